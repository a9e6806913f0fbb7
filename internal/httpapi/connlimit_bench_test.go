package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain runs the slow-connection helper of BenchmarkHealthzUnderSlowConns
// when the environment asks for it (a process of its own: its descriptors
// count against its own limit, not the server's), and the tests otherwise.
func TestMain(m *testing.M) {
	if spec := os.Getenv(slowConnHelperEnv); spec != "" {
		slowConnHelper(spec)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const slowConnHelperEnv = "KEYMESH_SLOWCONN_HELPER"

// slowConnHelper holds n slow connections from ip to addr ("addr ip n
// redial"): each sends half a request header and then nothing; with redial
// set, one the server closes is dialled again a second later, as an
// attacker keeps up the pressure (that is a flood of connections too:
// thousands a second).
// It prints "ready <dialled>" once every connection was tried, and exits
// when its standard input closes.
func slowConnHelper(spec string) {
	f := append(strings.Fields(spec), "")
	n, _ := strconv.Atoi(f[2])
	redial := f[3] == "1"
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(f[1])}, Timeout: 5 * time.Second}
	var dialled, open atomic.Int64
	hold := func(first chan<- struct{}) {
		for {
			c, err := d.Dial("tcp", f[0])
			if first != nil {
				first <- struct{}{}
				first = nil
			}
			if err == nil {
				dialled.Add(1)
				open.Add(1)
				c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
				io.Copy(io.Discard, c) // until the server closes it
				c.Close()
				open.Add(-1)
			}
			if !redial {
				return
			}
			time.Sleep(time.Second)
		}
	}
	first := make(chan struct{}, n)
	for range n {
		go hold(first)
		time.Sleep(50 * time.Microsecond) // about 20,000 dials a second
	}
	for range n {
		<-first
	}
	fmt.Printf("ready %d %d\n", dialled.Load(), open.Load())
	io.Copy(io.Discard, os.Stdin)
}

// BenchmarkHealthzUnderSlowConns is the latency of GET /healthz (a new
// connection each, from 127.0.0.1) while helper processes hold
// KEYMESH_SLOWCONNS slow connections (default 20,000) from other loopback
// addresses, 9,000 per address and process, against a server from
// NewServer on a LimitListener with the default caps and connection rate
// (on Linux, connections over the rate are tarpitted); KEYMESH_NOCAP=1
// serves on the bare listener instead (the node before issue 16), and
// KEYMESH_SLOWCONN_REDIAL=1 makes the helpers dial again a second after
// the server closed a connection. Failed
// probes (5 s timeout) are counted, not fatal. Reports p50, p99 and max
// in ms, failures, and the connections the server held at the end.
//
//	go test ./internal/httpapi -run '^$' -bench HealthzUnderSlowConns -benchtime 200x
func BenchmarkHealthzUnderSlowConns(b *testing.B) {
	total := 20_000
	if s := os.Getenv("KEYMESH_SLOWCONNS"); s != "" {
		total, _ = strconv.Atoi(s)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var ln net.Listener = LimitListener(raw, ConnLimits{})
	if os.Getenv("KEYMESH_NOCAP") == "1" {
		ln = raw
	}
	srv := NewServer(NewHandler(Options{}), slog.New(slog.DiscardHandler))
	var held atomic.Int64
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			held.Add(1)
		case http.StateClosed, http.StateHijacked:
			held.Add(-1)
		}
	}
	go srv.Serve(ln)
	defer srv.Close()
	addr := raw.Addr().String()

	dialled, open := 0, 0
	for i := 0; total-i*9000 > 0; i++ {
		n := min(9000, total-i*9000)
		cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s 127.0.6.%d %d %s", slowConnHelperEnv, addr, i+1, n, os.Getenv("KEYMESH_SLOWCONN_REDIAL")))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
		line, err := bufio.NewReader(stdout).ReadString('\n')
		var got, held int
		if _, err2 := fmt.Sscanf(line, "ready %d %d", &got, &held); err != nil || err2 != nil {
			b.Fatalf("helper: %q %v", line, err)
		}
		dialled, open = dialled+got, open+held
	}
	b.Logf("%d slow connections dialled, %d still open at the helpers; the server holds %d", dialled, open, held.Load())

	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	var lat []time.Duration
	failed := 0
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := hc.Get("http://" + addr + "/healthz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
		if err != nil {
			failed++
			continue
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return -1
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(failed), "failed")
	b.ReportMetric(float64(held.Load()), "server-conns")
}
