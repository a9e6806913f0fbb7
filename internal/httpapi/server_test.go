package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	srv  *httptest.Server
	logs *syncBuffer
	m    *Metrics
}

func newFixture(t *testing.T, ready func(context.Context) api.ReadyStatus) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := NewRegistry()
	RegisterNode(reg, func(context.Context) (*api.NodeInfo, error) {
		return &api.NodeInfo{NodeID: 1, ClusterID: "km-test", Threshold: 2, N: 3, Version: "test",
			Peers: []api.PeerInfo{{ID: 2, Reachable: true}, {ID: 3}}}, nil
	})
	reg.Register("test_fail", func(context.Context, json.RawMessage) (any, error) {
		return nil, errors.New("disk on fire at /secret/path")
	})
	reg.Register("test_panic", func(context.Context, json.RawMessage) (any, error) {
		panic("boom")
	})
	reg.Register("test_notFound", func(context.Context, json.RawMessage) (any, error) {
		return nil, api.Errorf(api.CodeNotFound, "no such account")
	})
	reg.Register("test_echo", func(_ context.Context, p json.RawMessage) (any, error) {
		var v struct {
			S string `json:"s"`
		}
		if err := DecodeParams(p, &v); err != nil {
			return nil, err
		}
		return v.S, nil
	})
	m := NewMetrics(func() []api.PeerInfo { return []api.PeerInfo{{ID: 2, Reachable: true}, {ID: 3}} })
	h := NewHandler(Options{Registry: reg, Logger: logger, Metrics: m, Ready: ready})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, logs: logs, m: m}
}

func (f *fixture) post(t *testing.T, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+"/", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// single posts body and decodes a single response, strictly.
func (f *fixture) single(t *testing.T, body string) api.Response {
	t.Helper()
	status, _, b := f.post(t, body)
	if status != http.StatusOK {
		t.Fatalf("status %d for %s: %s", status, body, b)
	}
	var r api.Response
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("response %s: %v", b, err)
	}
	if r.JSONRPC != "2.0" || (r.Error == nil) == (r.Result == nil) {
		t.Fatalf("malformed response %s", b)
	}
	return r
}

func TestRPCErrors(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct {
		name, body string
		code       int
		id         string
	}{
		{"parse error", `{"jsonrpc":"2.0","id":1,"method":`, api.CodeParseError, "null"},
		{"not json", `hello`, api.CodeParseError, "null"},
		{"empty body", ``, api.CodeParseError, "null"},
		{"wrong version", `{"jsonrpc":"1.0","id":7,"method":"keymesh_nodeInfo"}`, api.CodeInvalidRequest, "7"},
		{"version as number", `{"jsonrpc":2.0,"id":7,"method":"keymesh_nodeInfo"}`, api.CodeInvalidRequest, "7"},
		{"no version", `{"id":"a","method":"keymesh_nodeInfo"}`, api.CodeInvalidRequest, `"a"`},
		{"no method", `{"jsonrpc":"2.0","id":1}`, api.CodeInvalidRequest, "1"},
		{"method not string", `{"jsonrpc":"2.0","id":1,"method":1}`, api.CodeInvalidRequest, "1"},
		{"id object", `{"jsonrpc":"2.0","id":{},"method":"keymesh_nodeInfo"}`, api.CodeInvalidRequest, "null"},
		{"id bool", `{"jsonrpc":"2.0","id":true,"method":"keymesh_nodeInfo"}`, api.CodeInvalidRequest, "null"},
		{"params string", `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":"x"}`, api.CodeInvalidRequest, "1"},
		{"unknown member", `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","extra":1}`, api.CodeInvalidRequest, "null"},
		{"duplicate member", `{"jsonrpc":"2.0","id":1,"method":"test_fail","method":"keymesh_nodeInfo"}`, api.CodeInvalidRequest, "null"},
		{"not an object", `"keymesh_nodeInfo"`, api.CodeInvalidRequest, "null"},
		{"empty batch", `[]`, api.CodeInvalidRequest, "null"},
		{"unknown method", `{"jsonrpc":"2.0","id":"x","method":"keymesh_nope"}`, api.CodeMethodNotFound, `"x"`},
		{"invalid params", `{"jsonrpc":"2.0","id":3,"method":"keymesh_nodeInfo","params":[1]}`, api.CodeInvalidParams, "3"},
		{"params unknown field", `{"jsonrpc":"2.0","id":3,"method":"test_echo","params":{"s":"a","t":1}}`, api.CodeInvalidParams, "3"},
		{"params wrong type", `{"jsonrpc":"2.0","id":3,"method":"test_echo","params":[{"s":1}]}`, api.CodeInvalidParams, "3"},
		{"params missing", `{"jsonrpc":"2.0","id":3,"method":"test_echo"}`, api.CodeInvalidParams, "3"},
		{"own error code", `{"jsonrpc":"2.0","id":4,"method":"test_notFound"}`, api.CodeNotFound, "4"},
		{"internal", `{"jsonrpc":"2.0","id":5,"method":"test_fail"}`, api.CodeInternalError, "5"},
		{"panic", `{"jsonrpc":"2.0","id":6,"method":"test_panic"}`, api.CodeInternalError, "6"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := f.single(t, c.body)
			if r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("got %+v, want code %d", r.Error, c.code)
			}
			if string(r.ID) != c.id {
				t.Fatalf("id %s, want %s", r.ID, c.id)
			}
		})
	}
	// Internal errors: a fixed message to the client, the cause in the log.
	r := f.single(t, `{"jsonrpc":"2.0","id":5,"method":"test_fail"}`)
	if r.Error.Message != "internal error" {
		t.Fatalf("internal error message %q leaks", r.Error.Message)
	}
	if !strings.Contains(f.logs.String(), "disk on fire") {
		t.Fatal("the cause of the internal error was not logged")
	}
}

func TestRPCSuccess(t *testing.T) {
	f := newFixture(t, nil)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`,
		`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":[]}`,
		`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":null}`,
		` {"method":"keymesh_nodeInfo", "id" : 1 , "jsonrpc":"2.0"} `,
	} {
		r := f.single(t, body)
		if r.Error != nil || string(r.ID) != "1" {
			t.Fatalf("%s: %+v", body, r)
		}
		var info api.NodeInfo
		if err := json.Unmarshal(r.Result, &info); err != nil || info.NodeID != 1 || info.N != 3 || len(info.Peers) != 2 {
			t.Fatalf("%s: result %s (%v)", body, r.Result, err)
		}
	}
	r := f.single(t, `{"jsonrpc":"2.0","id":"abc","method":"test_echo","params":[{"s":"hi"}]}`)
	if string(r.Result) != `"hi"` || string(r.ID) != `"abc"` {
		t.Fatalf("echo: %+v", r)
	}
}

func TestNotifications(t *testing.T) {
	f := newFixture(t, nil)
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"keymesh_nodeInfo"}`,
		`{"jsonrpc":"2.0","method":"no_such_method"}`, // no reply even on error
		`[{"jsonrpc":"2.0","method":"keymesh_nodeInfo"},{"jsonrpc":"2.0","method":"test_fail"}]`,
	} {
		status, _, b := f.post(t, body)
		if status != http.StatusNoContent || len(b) != 0 {
			t.Fatalf("%s: status %d body %q", body, status, b)
		}
	}
}

func TestBatch(t *testing.T) {
	f := newFixture(t, nil)
	body := `[
		{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"},
		{"jsonrpc":"2.0","method":"keymesh_nodeInfo"},
		{"jsonrpc":"2.0","id":"two","method":"nope"},
		1,
		{"jsonrpc":"2.0","id":3,"method":"keymesh_nodeInfo","params":[1]}
	]`
	status, _, b := f.post(t, body)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	var rs []api.Response
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := []struct {
		id   string
		code int
	}{{"1", 0}, {`"two"`, api.CodeMethodNotFound}, {"null", api.CodeInvalidRequest}, {"3", api.CodeInvalidParams}}
	if len(rs) != len(want) {
		t.Fatalf("%d responses: %s", len(rs), b)
	}
	for i, w := range want {
		code := 0
		if rs[i].Error != nil {
			code = rs[i].Error.Code
		}
		if string(rs[i].ID) != w.id || code != w.code {
			t.Errorf("response %d: id %s code %d, want %s %d", i, rs[i].ID, code, w.id, w.code)
		}
	}

	// Too many requests in one batch: one error for the whole body.
	big := "[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"},`, api.MaxBatch+1), ",") + "]"
	r := f.single(t, big)
	if r.Error == nil || r.Error.Code != api.CodeLimitExceeded {
		t.Fatalf("oversize batch: %+v", r)
	}
	// Exactly MaxBatch is fine.
	ok := "[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"},`, api.MaxBatch), ",") + "]"
	if _, _, b := f.post(t, ok); json.Unmarshal(b, &rs) != nil || len(rs) != api.MaxBatch {
		t.Fatalf("batch of MaxBatch: %d responses", len(rs))
	}
}

func TestBodyLimit(t *testing.T) {
	f := newFixture(t, nil)
	pad := strings.Repeat(" ", api.MaxBodyBytes)
	status, _, b := f.post(t, `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`+pad)
	if status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", status)
	}
	var r api.Response
	if err := json.Unmarshal(b, &r); err != nil || r.Error == nil || r.Error.Code != api.CodeLimitExceeded || string(r.ID) != "null" {
		t.Fatalf("body %s (%v)", b, err)
	}
	// Just under the limit is served.
	body := `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`
	body += strings.Repeat(" ", api.MaxBodyBytes-len(body))
	if r := f.single(t, body); r.Error != nil {
		t.Fatalf("body at the limit: %+v", r.Error)
	}
}

func TestHTTPRoutes(t *testing.T) {
	ready := api.ReadyStatus{Ready: true, Threshold: 2, Reachable: 3}
	var mu sync.Mutex
	f := newFixture(t, func(context.Context) api.ReadyStatus {
		mu.Lock()
		defer mu.Unlock()
		return ready
	})
	get := func(path string) (int, []byte) {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if s, b := get("/healthz"); s != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("/healthz %d %s", s, b)
	}
	if s, _ := get("/"); s != http.StatusMethodNotAllowed {
		t.Fatalf("GET / = %d", s)
	}
	if s, _ := get("/nope"); s != http.StatusNotFound {
		t.Fatalf("GET /nope = %d", s)
	}
	s, b := get("/readyz")
	var st api.ReadyStatus
	if s != 200 || json.Unmarshal(b, &st) != nil || !st.Ready || st.Down == nil {
		t.Fatalf("/readyz %d %s", s, b)
	}
	mu.Lock()
	ready = api.ReadyStatus{Ready: false, Threshold: 2, Reachable: 1, Down: []uint16{2, 3}}
	mu.Unlock()
	s, b = get("/readyz")
	if s != http.StatusServiceUnavailable || json.Unmarshal(b, &st) != nil || st.Ready || len(st.Down) != 2 {
		t.Fatalf("/readyz not ready: %d %s", s, b)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, nil)
	f.single(t, `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`)
	f.single(t, `{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`)
	f.single(t, `{"jsonrpc":"2.0","id":1,"method":"nope"}`)
	f.single(t, `{`)
	f.m.SessionDone("dkls23-sign", nil)
	f.m.SessionDone("dkls23-sign", errors.New("x"))
	// The metrics are served on their own listener (the node's
	// metrics_listen), never on the public API port (issue 16): there,
	// /metrics is 404 like any unknown path.
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "keymesh_") {
		t.Fatalf("API port /metrics: HTTP %d %.200s", resp.StatusCode, b)
	}
	msrv := httptest.NewServer(f.m.Handler())
	defer msrv.Close()
	if resp, err = http.Get(msrv.URL + "/metrics"); err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`keymesh_rpc_requests_total{code="0",method="keymesh_nodeInfo"} 2`,
		`keymesh_rpc_requests_total{code="-32601",method="unknown"} 1`,
		`keymesh_rpc_requests_total{code="-32700",method="invalid"} 1`,
		`keymesh_rpc_duration_seconds_count{method="keymesh_nodeInfo"} 2`,
		`keymesh_http_requests_total{path="/",status="200"} 4`,
		`keymesh_http_requests_total{path="other",status="404"} 1`,
		`keymesh_peer_reachable{peer="2"} 1`,
		`keymesh_peer_reachable{peer="3"} 0`,
		`keymesh_mpc_sessions_total{protocol="dkls23-sign",result="ok"} 1`,
		`keymesh_mpc_sessions_total{protocol="dkls23-sign",result="error"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestLogs: one line per request with the request id from the response
// header, and never the body.
func TestLogs(t *testing.T) {
	f := newFixture(t, nil)
	const marker = "s3cr3t-param-value"
	_, hdr, _ := f.post(t, `{"jsonrpc":"2.0","id":1,"method":"test_echo","params":{"s":"`+marker+`"}}`)
	f.post(t, `{"jsonrpc":"2.0","id":1,"method":"test_fail","params":{"s":"`+marker+`"}}`)
	f.post(t, `{"jsonrpc":"2.0","id":1,"method":"test_echo","params":{"`+marker+`":1}}`)
	f.post(t, `{"jsonrpc":"2.0","id":1,"`+marker+`":1}`)
	logs := f.logs.String()
	if strings.Contains(logs, marker) {
		t.Fatalf("request body reached the log:\n%s", logs)
	}
	id := hdr.Get("X-Request-Id")
	if len(id) != 16 {
		t.Fatalf("X-Request-Id %q", id)
	}
	var found bool
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["request_id"] == id {
			found = true
			if rec["rpc_methods"] != "test_echo" || rec["status"] != float64(200) {
				t.Errorf("log line %s", line)
			}
		}
	}
	if !found {
		t.Fatalf("no log line with request id %s", id)
	}
}

func BenchmarkRPCNodeInfo(b *testing.B) {
	reg := NewRegistry()
	RegisterNode(reg, func(context.Context) (*api.NodeInfo, error) {
		return &api.NodeInfo{NodeID: 1, ClusterID: "km-bench", Threshold: 2, N: 3,
			Peers: []api.PeerInfo{{ID: 2, Reachable: true}, {ID: 3, Reachable: true}}}, nil
	})
	h := NewHandler(Options{Registry: reg, Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(nil)})
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`)
	for b.Loop() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkDecodeBatch(b *testing.B) {
	body := []byte("[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo","params":[{"a":1}]},`, api.MaxBatch), ",") + "]")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, top := decodeBody(body); top != nil {
			b.Fatal(top)
		}
	}
}

// TestHandlerDeadline: handlers run under RequestTimeout and see the
// request id.
func TestHandlerDeadline(t *testing.T) {
	reg := NewRegistry()
	reg.Register("test_ctx", func(ctx context.Context, _ json.RawMessage) (any, error) {
		d, ok := ctx.Deadline()
		return map[string]any{"ok": ok && time.Until(d) <= RequestTimeout && time.Until(d) > RequestTimeout-time.Second, "id": RequestID(ctx)}, nil
	})
	srv := httptest.NewServer(NewHandler(Options{Registry: reg}))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"test_ctx"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Result struct {
			OK bool   `json:"ok"`
			ID string `json:"id"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	if !r.Result.OK || r.Result.ID == "" || r.Result.ID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("handler context: %+v, header id %q", r.Result, resp.Header.Get("X-Request-Id"))
	}
}
