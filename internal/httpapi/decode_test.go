package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keymesh/keymesh/api"
)

// FuzzDecodeBody checks that decodeBody never panics and that whatever it
// accepts is a well-formed request that survives a round trip through
// api.Request unchanged.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"keymesh_nodeInfo"}`,
		`{"jsonrpc":"2.0","id":"a","method":"m","params":[1,2]}`,
		`{"jsonrpc":"2.0","method":"m","params":{"a":null}}`,
		`[{"jsonrpc":"2.0","id":null,"method":"m"},1,[]]`,
		`{"jsonrpc":"2.0","id":1,"method":"m","method":"n"}`,
		`{"jsonrpc":"2.0","id":-1.5e3,"method":"m","params":null}`,
		`{"jsonrp\u0063":"2.0","id":1,"method":"m"}`,
		`[]`, `{`, ``, `null`, `[1,1] x`, "[" + strings.Repeat("1,", 101) + "x",
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"m\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, batch, top := decodeBody(body)
		if !json.Valid(body) {
			// A batch is refused at its element MaxBatch+1, before
			// the rest is read.
			over := top != nil && top.Code == api.CodeLimitExceeded && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("["))
			if top == nil || top.Code != api.CodeParseError && !over {
				t.Fatalf("invalid JSON not a parse error: %+v", top)
			}
			return
		}
		if top != nil {
			if items != nil {
				t.Fatal("both a top-level error and items")
			}
			return
		}
		if !batch && len(items) != 1 {
			t.Fatalf("%d items for a single request", len(items))
		}
		if batch && (len(items) == 0 || len(items) > api.MaxBatch) {
			t.Fatalf("batch of %d items accepted", len(items))
		}
		for _, it := range items {
			if (it.req == nil) == (it.err == nil) {
				t.Fatal("item is neither a request nor an error")
			}
			if it.id != nil && (!json.Valid(it.id) || !utf8.Valid(it.id)) {
				t.Fatalf("id %q is not JSON in UTF-8", it.id)
			}
			if it.err != nil {
				continue
			}
			r := it.req
			if r.method == "" {
				t.Fatal("empty method accepted")
			}
			if r.params != nil && r.params[0] != '[' && r.params[0] != '{' {
				t.Fatalf("params %q accepted", r.params)
			}
			enc, err := json.Marshal(api.Request{JSONRPC: "2.0", ID: r.id, Method: r.method, Params: r.params})
			if err != nil {
				t.Fatal(err)
			}
			again := decodeRequest(enc)
			if again.req == nil {
				t.Fatalf("re-encoded request %s rejected: %v", enc, again.err)
			}
			if again.req.method != r.method || !jsonEqual(again.req.id, r.id) || !jsonEqual(again.req.params, r.params) {
				t.Fatalf("round trip changed %s", enc)
			}
		}
	})
}

// jsonEqual compares two raw JSON values after compaction (Marshal
// compacts RawMessage).
func jsonEqual(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
