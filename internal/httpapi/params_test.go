package httpapi

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/keymesh/keymesh/api"
)

type testParams struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags,omitempty"`
}

func TestDecodeParams(t *testing.T) {
	for _, ok := range []string{`{"name":"a","count":2}`, `[{"name":"a","count":2}]`, ` [ {"count":2,"name":"a"} ] `} {
		var p testParams
		if err := DecodeParams(json.RawMessage(ok), &p); err != nil || p.Name != "a" || p.Count != 2 {
			t.Errorf("%s: %+v %v", ok, p, err)
		}
	}
	for _, bad := range []string{``, `[]`, `[{},{}]`, `[1]`, `{"name":1}`, `{"nope":1}`, `"x"`, `{"name":"a"} {}`} {
		var p testParams
		err := DecodeParams(json.RawMessage(bad), &p)
		var e *api.Error
		if !errors.As(err, &e) || e.Code != api.CodeInvalidParams {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, none := range []string{``, `[]`, `{}`, ` [ ] `} {
		if err := NoParams(json.RawMessage(none)); err != nil {
			t.Errorf("NoParams(%q): %v", none, err)
		}
	}
	for _, some := range []string{`[1]`, `{"a":1}`, `[null]`} {
		if err := NoParams(json.RawMessage(some)); err == nil {
			t.Errorf("NoParams(%q) accepted", some)
		}
	}
}

// FuzzDecodeParams: DecodeParams never panics, fails only with
// CodeInvalidParams, and what it accepts survives a round trip.
func FuzzDecodeParams(f *testing.F) {
	for _, s := range []string{`{"name":"a","count":2}`, `[{"name":"a","tags":["x"]}]`, `[{},{}]`, `{"nope":1}`, `{"count":1e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p testParams
		err := DecodeParams(b, &p)
		if err != nil {
			var e *api.Error
			if !errors.As(err, &e) || e.Code != api.CodeInvalidParams {
				t.Fatalf("error %v is not invalid params", err)
			}
			return
		}
		enc, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q testParams
		if err := DecodeParams(enc, &q); err != nil {
			t.Fatalf("re-encoded %s rejected: %v", enc, err)
		}
		if q.Name != p.Name || q.Count != p.Count || len(q.Tags) != len(p.Tags) {
			t.Fatalf("round trip changed %s", enc)
		}
	})
}
