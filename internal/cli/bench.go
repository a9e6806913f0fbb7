package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/load"
)

// benchSignRate is the signature quota of the scope bench sign creates:
// auth.MaxSignsPerSecond, the most a node lets any scope have.
const benchSignRate = auth.MaxSignsPerSecond

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a running cluster",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBenchSignCmd())
	cmd.AddCommand(newBenchFloodCmd()) // benchflood.go
	return cmd
}

func newBenchSignCmd() *cobra.Command {
	var (
		c           creds
		concurrency int
		requests    int
		duration    time.Duration
		reqTimeout  time.Duration
		progress    string
		metricsURLs string
		msgSize     int
	)
	cmd := &cobra.Command{
		Use:   "sign",
		Short: "Drive personal_sign requests at a cluster and report throughput, latency and errors",
		Long: `Drive a running cluster with personal_sign requests through its real API
and real authorization: --concurrency clients, each with one request in
flight, for --requests requests or for --duration. Every signature is
checked with go-ethereum (the recovered address must be the wallet's); a
wrong one counts as an error of kind "bad signature". Prints throughput,
latency p50/p90/p99/max of the successful requests, and errors by kind.

The wallet: with --creds naming an existing file, that file's account and
address are used (as keymesh sign does). Otherwise the tool makes a new
developer key, a developer-mode scope, an account and its wallet key (DKG)
through the API, and, if --creds names a file that does not exist yet,
saves them there so that the next run reuses them.

--url may list several nodes (comma-separated) to spread the clients over
several nodes, each one then the gateway for its share of the requests.
After the run it also prints the CPU time the node processes behind --url
spent (process_cpu_seconds_total from their /metrics, at --metrics-url:
their metrics listeners, which keymesh dev prints; the nodes of keymesh
dev share one process) and its own, per signature: on one machine, their
sum tells how many signatures per second the cores can give.
A progress bar is drawn on stderr (redrawn in place on a terminal, a line
every 5 s otherwise).

  keymesh dev &
  keymesh bench sign --concurrency 32 --requests 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.warn = cmd.ErrOrStderr()
			if concurrency < 1 {
				return errors.New("--concurrency must be at least 1")
			}
			if cmd.Flags().Changed("requests") && duration > 0 {
				return errors.New("give --requests or --duration, not both")
			}
			if duration > 0 {
				requests = 0
			}
			if requests <= 0 && duration <= 0 {
				return errors.New("--requests must be at least 1 (or give --duration)")
			}
			if msgSize < 1 || msgSize > api.MaxMessageBytes {
				return fmt.Errorf("--message-size must be 1 to %d bytes", api.MaxMessageBytes)
			}
			var tty bool
			switch progress {
			case "auto":
				tty = isTerminal(cmd.ErrOrStderr())
			case "tty":
				tty = true
			case "lines", "none":
			default:
				return fmt.Errorf("--progress %q: want auto, tty, lines or none", progress)
			}
			var list []string
			for _, s := range strings.Split(c.url, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			if len(list) > 0 {
				c.url = list[0]
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()

			// A load tool is a patient client: a request refused busy or
			// rate-limited (nothing spent: the gateway refuses before it
			// authorises) is sent again as the node's hint says, within
			// the request's timeout, instead of counting as failed after
			// the SDK's default three attempts.
			c.extra = append(c.extra, client.WithRetry(benchRetry))
			setupCtx, cancel := context.WithTimeout(cmd.Context(), c.timeout)
			defer cancel()
			acct, err := benchAccount(setupCtx, &c, concurrency, errOut)
			if err != nil {
				return err
			}
			// One account per gateway URL: the same wallet and approver
			// through another node.
			accts := []*client.Account{acct}
			for _, u := range list[min(1, len(list)):] {
				cl, err := newClient(u, concurrency, c.clientOptionsFor(u)...)
				if err != nil {
					return err
				}
				ap, err := c.approver()
				if err != nil {
					return err
				}
				accts = append(accts, client.NewAccount(cl, ap, acct.Scope(), acct.ID(), acct.Address()))
			}

			gateways := c.loaded.URL
			if len(list) > 1 {
				gateways = strings.Join(list, ", ")
			}
			stop := fmt.Sprintf("%d requests", requests)
			if duration > 0 {
				stop = duration.String()
			}
			fmt.Fprintf(out, "keymesh bench sign: %s, concurrency %d, wallet %s (%s/%s), via %s\n",
				stop, concurrency, acct.Address().Hex(), acct.Scope(), acct.ID(), gateways)

			// Each message is unique (a run prefix and the request index),
			// so that no two requests sign the same payload.
			var prefix [8]byte
			rand.Read(prefix[:])
			run := hex.EncodeToString(prefix[:])
			opts := load.Options{
				Concurrency: concurrency,
				Requests:    requests,
				Duration:    duration,
				Timeout:     reqTimeout,
				Classify:    classifyError,
				TTY:         tty,
			}
			if progress != "none" {
				opts.Progress = errOut
			}
			nodes := list
			if len(nodes) == 0 { // the URL came from the credentials
				nodes = []string{c.loaded.URL}
			}
			if metricsURLs != "" { // the nodes' metrics listeners (not on the API port)
				nodes = nil
				for _, u := range strings.Split(metricsURLs, ",") {
					nodes = append(nodes, strings.TrimSuffix(strings.TrimSpace(u), "/metrics"))
				}
			}
			cpu0 := serverCPU(cmd.Context(), nodes)
			self0 := selfCPU()
			res, err := load.Run(cmd.Context(), opts, func(ctx context.Context, i int) error {
				msg := benchMessage(run, i, msgSize)
				_, err := accts[i%len(accts)].SignMessage(ctx, msg)
				return err
			})
			if err != nil {
				return err
			}
			if err := res.WriteSummary(out); err != nil {
				return err
			}
			fmt.Fprintf(out, "verified     %d signatures, each recovered (go-ethereum) to %s\n", res.OK, acct.Address().Hex())
			writeCPU(out, cpu0, serverCPU(cmd.Context(), nodes), selfCPU()-self0, res.OK)
			if res.Interrupted {
				return errors.New("interrupted")
			}
			if res.OK == 0 {
				return errors.New("no request succeeded")
			}
			return nil
		},
	}
	c.flags(cmd.Flags(), true)
	fl := cmd.Flags()
	fl.Lookup("url").Usage = "node API URL; several, comma-separated, spread the clients over those nodes (default: the credentials file's, else $KEYMESH_URL, else " + defaultURL + ")"
	fl.IntVarP(&concurrency, "concurrency", "c", 32, "concurrent clients, one request in flight each")
	fl.IntVarP(&requests, "requests", "n", 1000, "number of requests (ignored with --duration)")
	fl.DurationVarP(&duration, "duration", "d", 0, "run for this long instead of a number of requests")
	fl.DurationVar(&reqTimeout, "request-timeout", 30*time.Second, "time limit for each request")
	fl.StringVar(&progress, "progress", "auto", "progress on stderr: auto (bar on a terminal, lines otherwise), tty, lines or none")
	fl.IntVar(&msgSize, "message-size", 32, "bytes in each signed message")
	fl.StringVar(&metricsURLs, "metrics-url", "", "the nodes' metrics URLs (their metrics_listen; keymesh dev prints them), comma-separated, read for the node CPU line")
	return cmd
}

// benchMessage is request i's message: the run id, the index, padded to
// size bytes.
func benchMessage(run string, i, size int) []byte {
	s := fmt.Sprintf("keymesh bench %s %d ", run, i)
	b := make([]byte, size)
	for j := range b {
		b[j] = '.'
	}
	copy(b, s)
	return b
}

// benchAccount returns the wallet to load: the credentials' (an existing
// --creds file, or --key-file with --scope and --account), or a new one made
// through the API (saved to --creds when it names a new file).
func benchAccount(ctx context.Context, c *creds, conns int, log io.Writer) (*client.Account, error) {
	haveFile := false
	if c.file != "" {
		if _, err := os.Stat(c.file); err == nil {
			haveFile = true
		}
	}
	if haveFile || len(c.keyFiles) > 0 {
		return c.signer(ctx, conns)
	}
	url := c.url
	if url == "" {
		url = os.Getenv("KEYMESH_URL")
	}
	if url == "" {
		url = defaultURL
	}
	account := c.account
	if account == "" {
		var b [6]byte
		rand.Read(b[:])
		account = "bench-" + hex.EncodeToString(b[:])
	}
	t0 := time.Now()
	// The bench measures the cluster, not the default quota (50 signatures a
	// second per gateway): its scope asks for the most a node allows.
	f, res, err := devAccountQuota(ctx, url, account, "localhost", api.ScopeQuota{SignaturesPerSecond: benchSignRate}, c.clientOptions()...)
	if err != nil {
		return nil, fmt.Errorf("setting up a wallet to sign with: %w", err)
	}
	f.Measurements = c.measurements
	fmt.Fprintf(log, "created scope %s (quota %d signatures/s per gateway), account %s, wallet %s (threshold %d of %d) in %s\n",
		f.Scope, benchSignRate, f.Account, f.Address, res.Threshold, res.N, time.Since(t0).Round(time.Millisecond))
	if c.file != "" {
		if err := writeCreds(c.file, f, false); err != nil {
			return nil, err
		}
		fmt.Fprintf(log, "saved the credentials to %s (reused by the next run)\n", c.file)
	}
	c.loaded = *f
	c.url, c.address = "", ""
	c.file, c.keyFiles = "", nil
	return c.signerLoaded(ctx, conns)
}

// classifyError names the kind of a failed request for the error table:
// the JSON-RPC code and message for errors from the node, "bad signature"
// for a signature that does not verify, and the transport's failure.
func classifyError(err error) string {
	var ae *api.Error
	var ne net.Error
	switch {
	case errors.Is(err, client.ErrBadSignature):
		return "bad signature"
	case errors.As(err, &ae):
		msg := ae.Message
		if len(msg) > 90 {
			msg = msg[:90] + "…"
		}
		return fmt.Sprintf("rpc %d: %s", ae.Code, msg)
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &ne):
		return "network: " + shortNetErr(err)
	}
	s := err.Error()
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return "other: " + s
}

// shortNetErr keeps the end of a network error (e.g. "connection
// refused"), which is the same for every request, unlike the addresses.
func shortNetErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// serverCPU reads process_cpu_seconds_total from the /metrics of each node
// URL and returns it by process (the nodes of keymesh dev share one
// process, so they count once), keyed by keymesh_process_instance's random
// label, or by process_start_time_seconds for a node too old to have it:
// that one is only to 10 ms, so processes started together by a script
// were counted as one. A node whose metrics cannot be read is left out.
func serverCPU(ctx context.Context, urls []string) map[string]float64 {
	out := map[string]float64{}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(u, "/")+"/metrics", nil)
		if err != nil {
			continue
		}
		resp, err := hc.Do(req)
		if err != nil {
			continue
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			continue
		}
		var cpu, start string
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
				cpu = v
			}
			if v, ok := strings.CutPrefix(line, "process_start_time_seconds "); ok && !strings.HasPrefix(start, "instance ") {
				start = v
			}
			if v, ok := strings.CutPrefix(line, "keymesh_process_instance{"); ok {
				start = "instance " + v
			}
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(cpu), 64); err == nil && start != "" {
			out[start] = v
		}
	}
	return out
}

// selfCPU is this process's CPU time (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeCPU prints where the CPU time went: the node processes' (from their
// metrics, when readable) and this client's, per successful request.
func writeCPU(w io.Writer, before, after map[string]float64, self time.Duration, ok int) {
	var server float64
	procs := 0
	for k, v := range after {
		if b, found := before[k]; found {
			server += v - b
			procs++
		}
	}
	per := func(sec float64) string {
		if ok == 0 {
			return ""
		}
		return fmt.Sprintf(" (%.2f ms per signature)", 1000*sec/float64(ok))
	}
	if procs > 0 {
		fmt.Fprintf(w, "node CPU     %.2f s in %d node process(es) behind --url%s\n", server, procs, per(server))
	}
	fmt.Fprintf(w, "client CPU   %.2f s%s\n", self.Seconds(), per(self.Seconds()))
}

// benchRetry is bench sign's retry policy (see client.RetryPolicy).
var benchRetry = client.RetryPolicy{MaxAttempts: 20, MaxWait: time.Second}
