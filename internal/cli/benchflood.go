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
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/spf13/cobra"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/load"
)

// newBenchFloodCmd is `keymesh bench flood` (issue 16): one scope floods
// the cluster while another signs at a steady rate.
func newBenchFloodCmd() *cobra.Command {
	var (
		urls           string
		quietFor       time.Duration
		floodFor       time.Duration
		rate           float64
		noisySigners   int
		noisyKeygens   int
		quietSource    string
		requestTimeout time.Duration
		slowConns      int
		slowRedial     time.Duration
		slowSources    string
	)
	cmd := &cobra.Command{
		Use:   "flood",
		Short: "Flood a cluster from one scope while another signs at a steady rate",
		Long: `Measure how well a cluster keeps one scope's service while another
scope floods it (issue 16). The tool makes two developer-mode scopes, each
with an account and a wallet key, through the API:

  quiet  signs --rate personal_sign requests a second (an open loop: a
         request starts on time whether or not the earlier ones are done),
         first alone for --quiet-for, then for --flood-for while
  noisy  runs --noisy-signers clients signing back to back and
         --noisy-keygens clients creating wallet keys back to back.

Both spread their requests over every --url. It prints the quiet scope's
success rate and latency alone and under the flood, and the noisy scope's
successes and refusals by kind: over its quotas or its fair share it should
be told rate limited (-32060) or busy (-32006), never an authorisation
error. --quiet-source binds the quiet scope's connections to another local
address (e.g. 127.0.0.2), so that the per-address rate limit, which both
would share from one host, does not decide the result.

  keymesh dev &
  keymesh bench flood --url http://127.0.0.1:7100,http://127.0.0.1:7102,http://127.0.0.1:7104 --quiet-source 127.0.0.2

With --slow-conns N it floods the first --url's port with N slow
connections instead (each sends half a request header, then nothing; from
--slow-sources in turn) and probes GET /healthz over a new connection --rate
times a second, alone for --quiet-for and then under the flood for
--flood-for. --slow-redial D dials a connection again D after the node
closed it: the reconnecting slowloris. The tool's own descriptors bound N
(ulimit -n); run several processes for more.

  keymesh bench flood --url http://127.0.0.1:7100 --slow-conns 15000 --slow-redial 1s \
    --slow-sources 127.0.6.1,127.0.6.2 --quiet-source 127.0.0.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []string
			for _, s := range strings.Split(urls, ",") {
				if s = strings.TrimSpace(s); s != "" {
					list = append(list, s)
				}
			}
			if len(list) == 0 {
				if u := os.Getenv("KEYMESH_URL"); u != "" {
					list = []string{u}
				} else {
					list = []string{defaultURL}
				}
			}
			if rate <= 0 || noisySigners < 0 || noisyKeygens < 0 || floodFor <= 0 || quietFor <= 0 {
				return errors.New("--rate and the durations must be positive, the noisy clients not negative")
			}
			out := cmd.OutOrStdout()
			ctx := cmd.Context()
			if slowConns > 0 {
				return slowFlood(ctx, out, list[0], slowFloodOptions{conns: slowConns, redial: slowRedial, sources: slowSources,
					probeSource: quietSource, rate: rate, alone: quietFor, flood: floodFor, timeout: requestTimeout})
			}
			setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			var dialer *net.Dialer
			if quietSource != "" {
				ip := net.ParseIP(quietSource)
				if ip == nil {
					return fmt.Errorf("--quiet-source %q: not an IP address", quietSource)
				}
				dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}
			}
			quiet, _, err := floodAccounts(setup, list, "quiet", 8, dialer)
			if err != nil {
				return err
			}
			noisy, noisyAp, err := floodAccounts(setup, list, "noisy", noisySigners+noisyKeygens, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "keymesh bench flood: quiet scope %s signs %.0f/s; noisy scope %s runs %d signing and %d key generation clients; via %s\n",
				quiet[0].Scope(), rate, noisy[0].Scope(), noisySigners, noisyKeygens, strings.Join(list, ", "))

			var prefix [8]byte
			rand.Read(prefix[:])
			run := hex.EncodeToString(prefix[:])
			steady := func(tag string, d time.Duration) (*load.Result, error) {
				return load.Run(ctx, load.Options{Concurrency: 256, Duration: d, Rate: rate, Timeout: requestTimeout, Classify: classifyError},
					func(ctx context.Context, i int) error {
						_, err := quiet[i%len(quiet)].SignMessage(ctx, benchMessage(run+"-"+tag, i, 32))
						return err
					})
			}
			alone, err := steady("alone", quietFor)
			if err != nil {
				return err
			}

			// The flood: noisy clients back to back until the quiet run ends.
			floodCtx, stopFlood := context.WithCancel(ctx)
			var wg sync.WaitGroup
			var signs, keygens *load.Result
			noisyRun := func(res **load.Result, n int, fn load.Func) {
				if n == 0 {
					return
				}
				wg.Go(func() {
					r, _ := load.Run(floodCtx, load.Options{Concurrency: n, Duration: floodFor + time.Minute, Timeout: requestTimeout, Classify: classifyError}, fn)
					*res = r
				})
			}
			noisyRun(&signs, noisySigners, func(ctx context.Context, i int) error {
				_, err := noisy[i%len(noisy)].SignMessage(ctx, benchMessage(run+"-noisy", i, 32))
				return err
			})
			noisyRun(&keygens, noisyKeygens, func(ctx context.Context, i int) error {
				a := noisy[i%len(noisy)]
				_, _, err := client.CreateAccount(ctx, a.Client(), noisyAp, a.Scope(), a.ID())
				return err
			})
			time.Sleep(200 * time.Millisecond) // the flood is on
			flooded, err := steady("flood", floodFor)
			stopFlood()
			wg.Wait()
			if err != nil {
				return err
			}
			writeFlood(out, "quiet alone", alone)
			writeFlood(out, "quiet flood", flooded)
			for _, x := range []struct {
				name string
				r    *load.Result
			}{{"noisy sign", signs}, {"noisy keygen", keygens}} {
				if x.r != nil {
					writeFlood(out, x.name, x.r)
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&urls, "url", "", "node API URLs, comma-separated; both scopes spread their requests over them (default $KEYMESH_URL, else "+defaultURL+")")
	fl.DurationVar(&quietFor, "quiet-for", 5*time.Second, "how long the quiet scope signs alone first")
	fl.DurationVar(&floodFor, "flood-for", 10*time.Second, "how long the quiet scope signs under the flood")
	fl.Float64Var(&rate, "rate", 10, "the quiet scope's signatures per second")
	fl.IntVar(&noisySigners, "noisy-signers", 64, "the noisy scope's signing clients, each sending back to back")
	fl.IntVar(&noisyKeygens, "noisy-keygens", 8, "the noisy scope's key generation clients, each sending back to back")
	fl.StringVar(&quietSource, "quiet-source", "", "local IP address for the quiet scope's connections (e.g. 127.0.0.2)")
	fl.DurationVar(&requestTimeout, "request-timeout", 30*time.Second, "time limit for each request")
	fl.IntVar(&slowConns, "slow-conns", 0, "flood the first --url's port with this many slow connections and probe /healthz instead of the scope flood")
	fl.DurationVar(&slowRedial, "slow-redial", 0, "dial a slow connection again this long after the node closed it (0: hold each once)")
	fl.StringVar(&slowSources, "slow-sources", "", "local IP addresses for the slow connections, comma-separated, used in turn")
	return cmd
}

// floodAccounts makes a developer-mode scope with one account and wallet
// key through urls[0], and returns that account through each of urls and
// what approves its requests.
func floodAccounts(ctx context.Context, urls []string, name string, conns int, dialer *net.Dialer) ([]*client.Account, client.Approver, error) {
	var b [6]byte
	rand.Read(b[:])
	f, _, err := devAccount(ctx, urls[0], name+"-"+hex.EncodeToString(b[:]), "localhost")
	if err != nil {
		return nil, nil, fmt.Errorf("setting up the %s scope: %w", name, err)
	}
	c := &creds{loaded: *f}
	ap, err := c.approver()
	if err != nil {
		return nil, nil, err
	}
	var out []*client.Account
	for _, u := range urls {
		var opts []client.Option
		if dialer != nil {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.DialContext = dialer.DialContext
			tr.MaxIdleConnsPerHost = max(conns, 2)
			opts = append(opts, client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 5 * time.Minute}))
		}
		cl, err := newClient(u, conns, opts...)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, client.NewAccount(cl, ap, f.Scope, f.Account, common.HexToAddress(f.Address)))
	}
	return out, ap, nil
}

// writeFlood prints one line of a flood run: successes, latency, errors.
func writeFlood(w io.Writer, name string, r *load.Result) {
	pct := 0.0
	if r.Requests > 0 {
		pct = 100 * float64(r.OK) / float64(r.Requests)
	}
	fmt.Fprintf(w, "%-13s %5d requests, %5d ok (%.1f %%), p50 %s p99 %s\n", name, r.Requests, r.OK, pct,
		r.Latency.Quantile(0.50).Round(100*time.Microsecond), r.Latency.Quantile(0.99).Round(100*time.Microsecond))
	for _, k := range r.ErrorKinds() {
		fmt.Fprintf(w, "%13s %5d × %s\n", "", r.Errors[k], k)
	}
}

// slowFloodOptions configure slowFlood.
type slowFloodOptions struct {
	conns        int
	redial       time.Duration
	sources      string
	probeSource  string
	rate         float64
	alone, flood time.Duration
	timeout      time.Duration
}

// slowFlood is `keymesh bench flood --slow-conns`: /healthz probed alone,
// then under a flood of slow connections to the node at base.
func slowFlood(ctx context.Context, out io.Writer, base string, o slowFloodOptions) error {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--url %q: not a node URL", base)
	}
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	var srcs []string
	for _, s := range strings.Split(o.sources, ",") {
		if s = strings.TrimSpace(s); s != "" {
			srcs = append(srcs, s)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true // a new connection per probe, as a new client
	if o.probeSource != "" {
		ip := net.ParseIP(o.probeSource)
		if ip == nil {
			return fmt.Errorf("--quiet-source %q: not an IP address", o.probeSource)
		}
		tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).DialContext
	}
	hc := &http.Client{Transport: tr}
	probe := func(d time.Duration) (*load.Result, error) {
		return load.Run(ctx, load.Options{Concurrency: 256, Duration: d, Rate: o.rate, Timeout: o.timeout},
			func(ctx context.Context, _ int) error {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/healthz", nil)
				if err != nil {
					return err
				}
				resp, err := hc.Do(req)
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("HTTP %d", resp.StatusCode)
				}
				return nil
			})
	}
	from := "the default address"
	if len(srcs) > 0 {
		from = strings.Join(srcs, ",")
	}
	fmt.Fprintf(out, "keymesh bench flood: /healthz of %s probed %.0f/s; %d slow connections from %s, redial %s\n",
		base, o.rate, o.conns, from, o.redial)
	alone, err := probe(o.alone)
	if err != nil {
		return err
	}
	slow, err := load.HoldSlow(ctx, load.SlowOptions{Addr: addr, Conns: o.conns, Sources: srcs, Redial: o.redial})
	if err != nil {
		if slow != nil {
			slow.Stop()
		}
		return err
	}
	fmt.Fprintf(out, "slow connections: %d dialled, %d open, %d dials failed\n", slow.Dialled(), slow.Open(), slow.Failed())
	flooded, err := probe(o.flood)
	dialled, open, failed := slow.Dialled(), slow.Open(), slow.Failed()
	slow.Stop()
	if err != nil {
		return err
	}
	writeFlood(out, "healthz alone", alone)
	writeFlood(out, "healthz flood", flooded)
	fmt.Fprintf(out, "slow connections at the end: %d dialled in all, %d open, %d dials failed\n", dialled, open, failed)
	return nil
}
