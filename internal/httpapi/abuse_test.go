package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/keymesh/keymesh/api"
)

// hugeBatch is a body of exactly api.MaxBodyBytes holding a batch of n
// elements (each the number 1), as an attacker sends it: the largest
// number of elements a body may hold.
func hugeBatch(n int) []byte {
	elems := "1" + strings.Repeat(",1", n-1)
	pad := api.MaxBodyBytes - len(elems) - 2
	return []byte("[" + strings.Repeat(" ", max(pad, 0)) + elems + "]")
}

// TestOversizedBatchStopsAtMaxBatch (issue 16): a batch of 500,000
// elements is refused once its request MaxBatch+1 is read, not parsed
// whole first. Before, decodeBody unmarshalled every element (500,000
// allocations, 300 MB of RSS for concurrent ones) and checked the length
// after; the test counts allocations and shows that what follows the
// MaxBatch+1st element is not read at all.
func TestOversizedBatchStopsAtMaxBatch(t *testing.T) {
	body := hugeBatch(500_000)
	if len(body) != api.MaxBodyBytes {
		t.Fatalf("body of %d bytes", len(body))
	}
	allocs := testing.AllocsPerRun(3, func() {
		if _, _, top := decodeBody(body); top == nil || top.Code != api.CodeLimitExceeded {
			t.Fatalf("oversized batch: %+v", top)
		}
	})
	// A few per element decoded (MaxBatch of them), against at least one
	// per element of the body before.
	if allocs > 20*api.MaxBatch {
		t.Errorf("refusing a 500k batch took %.0f allocations", allocs)
	}
	// Garbage after element MaxBatch+1 is never reached.
	tail := []byte("[" + strings.Repeat("1,", api.MaxBatch+1) + "garbage")
	if _, _, top := decodeBody(tail); top == nil || top.Code != api.CodeLimitExceeded {
		t.Errorf("batch with a bad tail: %+v, want a limit error", top)
	}
	// Through a node's HTTP handler on a real socket: one clear error.
	f := newFixture(t, nil)
	status, _, b := f.post(t, string(body))
	var r api.Response
	if status != http.StatusOK || json.Unmarshal(b, &r) != nil || r.Error == nil ||
		r.Error.Code != api.CodeLimitExceeded || !strings.Contains(r.Error.Message, "at most 100") || string(r.ID) != "null" {
		t.Fatalf("HTTP %d: %s", status, b)
	}
	// A batch of MaxBatch with whitespace and a broken end is still a
	// parse error; so is anything after the closing bracket.
	for _, s := range []string{"[1,1", "[1,1] x", "[1,1][]", "[1 1]", "[1,]"} {
		if _, _, top := decodeBody([]byte(s)); top == nil || top.Code != api.CodeParseError {
			t.Errorf("%q: %+v, want a parse error", s, top)
		}
	}
}

// TestContentTypeStrict (issue 16): a browser posts text/plain (or a form)
// to any origin without a CORS preflight, so a page elsewhere could make
// its visitors' browsers run unauthenticated methods on the node
// (keymesh_initiateRegistration). Only application/json runs; the rest is
// HTTP 415 with a JSON-RPC error saying what to send, and no handler runs.
// Before, the Content-Type was not looked at.
func TestContentTypeStrict(t *testing.T) {
	var calls atomic.Int32
	reg := NewRegistry()
	reg.Register("keymesh_initiateRegistration", func(context.Context, json.RawMessage) (any, error) {
		calls.Add(1)
		return "ok", nil
	})
	srv := httptest.NewServer(NewHandler(Options{Registry: reg}))
	t.Cleanup(srv.Close)
	body := `{"jsonrpc":"2.0","id":1,"method":"keymesh_initiateRegistration","params":{"scope":"a","account":"b"}}`
	post := func(ct string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.Header.Set("Origin", "https://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, ct := range []string{
		"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "", "application/json; charset=latin1",
		"application/jsonx", "application/json; foo=bar", "application/keymesh-sealed",
	} {
		status, b := post(ct)
		var r api.Response
		if status != http.StatusUnsupportedMediaType || json.Unmarshal(b, &r) != nil || r.Error == nil ||
			r.Error.Code != api.CodeInvalidRequest || !strings.Contains(r.Error.Message, "application/json") {
			t.Errorf("Content-Type %q: HTTP %d %s", ct, status, b)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d calls ran with a wrong Content-Type", n)
	}
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;Charset=UTF-8"} {
		if status, b := post(ct); status != http.StatusOK || !bytes.Contains(b, []byte(`"result":"ok"`)) {
			t.Errorf("Content-Type %q: HTTP %d %s", ct, status, b)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d calls ran, want 3", n)
	}
}

// TestInvalidUTF8IDNotEchoed (issue 16): an id string that is not UTF-8 is
// not echoed back raw (the response would not be JSON); the request is
// invalid and answered with id null.
func TestInvalidUTF8IDNotEchoed(t *testing.T) {
	f := newFixture(t, nil)
	for _, body := range []string{
		"{\"jsonrpc\":\"2.0\",\"id\":\"a\xffb\",\"method\":\"keymesh_nodeInfo\"}",
		"[{\"jsonrpc\":\"2.0\",\"id\":\"\xc3\",\"method\":\"keymesh_nodeInfo\"}]",
	} {
		status, _, b := f.post(t, body)
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("HTTP %d: response is not valid UTF-8 JSON: %q", status, b)
		}
		b = bytes.TrimSpace(b)
		var r api.Response
		if b[0] == '[' {
			var rs []api.Response
			if json.Unmarshal(b, &rs) != nil || len(rs) != 1 {
				t.Fatalf("%s", b)
			}
			r = rs[0]
		} else if json.Unmarshal(b, &r) != nil {
			t.Fatalf("%s", b)
		}
		if r.Error == nil || r.Error.Code != api.CodeInvalidRequest || string(r.ID) != "null" || !strings.Contains(r.Error.Message, "UTF-8") {
			t.Fatalf("response %s", b)
		}
	}
	// A valid UTF-8 id (and an escaped one) is echoed unchanged.
	r := f.single(t, `{"jsonrpc":"2.0","id":"é\u00e9","method":"keymesh_nodeInfo"}`)
	if string(r.ID) != `"é\u00e9"` {
		t.Fatalf("id %s", r.ID)
	}
}

// BenchmarkRefuseHugeBatch is the cost to the node of refusing a body of
// api.MaxBodyBytes holding a batch of 500,000 elements, through its HTTP
// handler (reading the body included). Issue 16's target: under 5 ms.
//
// The node's handler has rate limits (DefaultRateLimits); the body is
// refused before any bucket is asked, so its cost is the same.
func BenchmarkRefuseHugeBatch(b *testing.B) {
	limits := DefaultRateLimits()
	h := NewHandler(Options{Registry: NewRegistry(), RateLimits: &limits})
	body := hugeBatch(500_000)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || !bytes.Contains(w.Body.Bytes(), []byte("-32005")) {
			b.Fatalf("HTTP %d: %s", w.Code, w.Body.Bytes())
		}
	}
}
