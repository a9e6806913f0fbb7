package cli

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/httpapi"
)

// TestBenchCountsNodeProcesses (issue 16): `keymesh bench sign --url A,B`
// counted 1 node process for 2 when the two started within the same 10 ms
// (process_start_time_seconds, its key, has that resolution: a script
// starting a cluster). Processes are now told apart by
// keymesh_process_instance; nodes in one process (keymesh dev) still count
// once, and a node without the metric falls back to the start time.
func TestBenchCountsNodeProcesses(t *testing.T) {
	metrics := func(instance string, cpu float64) *httptest.Server {
		body := fmt.Sprintf("process_cpu_seconds_total %g\nprocess_start_time_seconds 1.76491234512e+09\n", cpu)
		if instance != "" {
			body += fmt.Sprintf("keymesh_process_instance{instance=%q} 1\n", instance)
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/metrics" {
				fmt.Fprint(w, body)
			}
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	a, b, a2 := metrics("aaaa", 1), metrics("bbbb", 2), metrics("aaaa", 1)
	ctx := context.Background()
	if got := serverCPU(ctx, []string{a.URL, b.URL, a2.URL}); len(got) != 2 {
		t.Errorf("two processes (one with two nodes) counted as %d: %v", len(got), got)
	}
	var out bytes.Buffer
	writeCPU(&out, serverCPU(ctx, []string{a.URL, b.URL}), serverCPU(ctx, []string{a.URL, b.URL}), 0, 1)
	if !strings.Contains(out.String(), "in 2 node process(es)") {
		t.Errorf("output: %s", out.String())
	}
	// Older nodes: the start time.
	if got := serverCPU(ctx, []string{metrics("", 1).URL, metrics("", 2).URL}); len(got) != 1 {
		t.Errorf("old nodes with one start time: %v", got)
	}
	// A real node's metrics (its metrics listener's server) carry the instance.
	m := httptest.NewServer(httpapi.NewMetricsServer(httpapi.NewMetrics(nil), slog.New(slog.DiscardHandler)).Handler)
	t.Cleanup(m.Close)
	got := serverCPU(ctx, []string{m.URL})
	for k := range got {
		if !strings.HasPrefix(k, "instance ") {
			t.Errorf("a node's metrics keyed by %q", k)
		}
	}
	if len(got) != 1 {
		t.Errorf("a node's metrics: %v", got)
	}
}
