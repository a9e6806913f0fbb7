// Command peers times keymesh's DKLs23 and other Go threshold-ECDSA
// libraries (tss-lib GG18/20, multi-party-sig CMP and Doerner, kryptology
// DKLs18) on this machine for the same (t, n), and prints a Markdown table
// of keygen and signing medians with the ratio of each to keymesh.
//
// Run from this directory (a separate module, so that keymesh itself never
// depends on the peers):
//
//	go run . -keygens 3 -signs 10
//
// See README.md for what each row measures and what is cached.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/keymesh/keymesh/bench/peers/peer"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keygens := fs.Int("keygens", 3, "key generations timed per protocol (at least 1)")
	signs := fs.Int("signs", 10, "signatures timed per protocol")
	pre := fs.String("preparams", "fixtures", "tss-lib pre-parameters: fixtures (shipped with tss-lib v2.0.2) or generate (once for this run)")
	preTimeout := fs.Duration("pretimeout", 5*time.Minute, "timeout for generating one party's tss-lib pre-parameters")
	timeout := fs.Duration("timeout", 5*time.Minute, "timeout for one keygen or signing run")
	filter := fs.String("run", "", "only protocols whose name matches this regular expression")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	re, err := regexp.Compile(*filter)
	if err != nil {
		return err
	}

	var tss *peer.TSSPreParams
	var tssErr error
	if re.MatchString("tss-lib") {
		switch *pre {
		case "fixtures":
			tss, tssErr = peer.TSSFixturePreParams(5)
		case "generate":
			fmt.Fprintf(stderr, "generating tss-lib pre-parameters for 5 parties (safe primes; minutes)...\n")
			tss, tssErr = peer.TSSGeneratePreParams(5, *preTimeout)
		default:
			return fmt.Errorf("-preparams %q: want fixtures or generate", *pre)
		}
		if tssErr != nil {
			fmt.Fprintf(stderr, "tss-lib rows unavailable: %v\n", tssErr)
		}
	}

	started := time.Now().UTC()
	var results []peer.Result
	for _, p := range peer.Set(tss, tssErr, *timeout) {
		if !re.MatchString(p.Name()) {
			continue
		}
		fmt.Fprintf(stderr, "%s %d-of-%d ...\n", p.Name(), p.T(), p.N())
		r := peer.Measure(p, *keygens, *signs)
		if r.Err != nil && !errors.Is(r.Err, peer.ErrUnavailable) {
			fmt.Fprintf(stderr, "  failed: %v\n", r.Err)
		}
		results = append(results, r)
	}

	fmt.Fprintf(stdout, "Go %s, %s/%s, GOMAXPROCS=%d, NumCPU=%d, started %s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), runtime.NumCPU(), started.Format(time.RFC3339))
	fmt.Fprintf(stdout, "Command: go run . %s (in bench/peers); medians of %d keygens and %d signatures, all parties in one process\n\n",
		strings.Join(args, " "), max(*keygens, 1), *signs)
	writeTable(stdout, results)
	return nil
}

// writeTable prints one Markdown row per result. "× keymesh" is the peer's
// median divided by keymesh's median at the same (t, n): how many times
// slower the peer is.
func writeTable(w io.Writer, results []peer.Result) {
	ours := map[[2]int]peer.Result{}
	for _, r := range results {
		if r.Protocol.Name() == peer.KeymeshName && r.Err == nil {
			ours[[2]int{r.Protocol.T(), r.Protocol.N()}] = r
		}
	}
	fmt.Fprintln(w, "| protocol | t-of-n | keygen median | sign median | keygen × keymesh | sign × keymesh | bytes/sig (all parties) | notes |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		p := r.Protocol
		tn := [2]int{p.T(), p.N()}
		note := p.Note()
		if r.Err != nil {
			if errors.Is(r.Err, peer.ErrUnavailable) {
				note = "not available: " + strings.TrimPrefix(r.Err.Error(), peer.ErrUnavailable.Error()+": ")
			} else {
				note = "failed: " + r.Err.Error()
			}
		}
		k, s := dur(r.Keygen), dur(r.Sign)
		kr, sr := "n/a", "n/a"
		if o, ok := ours[tn]; ok {
			kr, sr = ratio(r.Keygen, o.Keygen), ratio(r.Sign, o.Sign)
		}
		bytes := "n/a"
		if r.BytesPerSig > 0 {
			bytes = fmt.Sprintf("%d", r.BytesPerSig)
		}
		fmt.Fprintf(w, "| %s | %d-of-%d | %s | %s | %s | %s | %s | %s |\n", p.Name(), p.T(), p.N(), k, s, kr, sr, bytes, note)
	}
}

func dur(t peer.Timing) string {
	if len(t.Runs) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (n=%d)", round(t.Median), len(t.Runs))
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func ratio(peerT, oursT peer.Timing) string {
	if len(peerT.Runs) == 0 || len(oursT.Runs) == 0 || oursT.Median <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f×", float64(peerT.Median)/float64(oursT.Median))
}
