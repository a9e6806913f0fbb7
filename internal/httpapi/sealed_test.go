package httpapi

import (
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/envelope"
)

var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
)

// testRSA returns two RSA-3072 keys, generated once per test binary.
func testRSA(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	rsaOnce.Do(func() {
		for i := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 3072)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = k
		}
	})
	return rsaKeys[0], rsaKeys[1]
}

func newHPKEKey(t testing.TB, kem uint16) hpke.PrivateKey {
	t.Helper()
	var k hpke.KEM
	if kem == envelope.KEMXWing {
		k = hpke.MLKEM768X25519()
	} else {
		var err error
		if k, err = hpke.NewKEM(kem); err != nil {
			t.Fatal(err)
		}
	}
	sk, err := k.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// sealedFixture is a handler with Sealing set and real openers; test_seen
// echoes what a handler sees of the request, and calls counts the calls
// that reached a handler.
type sealedFixture struct {
	srv   *httptest.Server
	xwing hpke.PrivateKey
	x255  hpke.PrivateKey
	rsa   *rsa.PrivateKey
	calls atomic.Int64
}

type seen struct {
	Proofs string `json:"proofs"`
	Scope  string `json:"scope"`
	Mode   string `json:"mode"`
	S      string `json:"s"`
}

func newSealedFixture(t *testing.T, allowPlaintext bool) *sealedFixture {
	return newSealedFixtureWith(t, allowPlaintext, &envelope.MemoryNonceStore{})
}

func newSealedFixtureWith(t *testing.T, allowPlaintext bool, nonces *envelope.MemoryNonceStore) *sealedFixture {
	t.Helper()
	f := &sealedFixture{xwing: newHPKEKey(t, envelope.KEMXWing), x255: newHPKEKey(t, envelope.KEMX25519)}
	f.rsa, _ = testRSA(t)
	op, err := envelope.NewOpener(nonces, 0, nil, f.xwing, f.x255)
	if err != nil {
		t.Fatal(err)
	}
	cop, err := envelope.NewCompatOpener(nonces, 0, nil, f.rsa)
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	reg.Register("test_seen", func(ctx context.Context, p json.RawMessage) (any, error) {
		f.calls.Add(1)
		var v struct {
			S string `json:"s"`
		}
		if err := DecodeParams(p, &v); err != nil {
			return nil, err
		}
		return seen{Proofs: Proofs(ctx), Scope: SealedScope(ctx), Mode: RequestMode(ctx).String(), S: v.S}, nil
	})
	h := NewHandler(Options{Registry: reg, Sealing: &Sealing{
		AllowPlaintext: allowPlaintext,
		Openers: func(context.Context) (*envelope.Opener, *envelope.CompatOpener, error) {
			return op, cop, nil
		},
	}})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

const seenBody = `{"jsonrpc":"2.0","id":7,"method":"test_seen","params":{"s":"héllo"}}`

// sealHPKE seals seenBody (or body) with proofs inside, bound to scope.
func sealHPKE(t *testing.T, pk hpke.PublicKey, method, scope, body string, now time.Time) ([]byte, *envelope.Pending) {
	t.Helper()
	inner, err := EncodeSealedCall(SealedCall{RPC: json.RawMessage(body), Auth: "proof-for-" + scope})
	if err != nil {
		t.Fatal(err)
	}
	env, p, err := envelope.SealRequest(pk, envelope.Request{Method: method, Scope: scope, Body: inner}, now)
	if err != nil {
		t.Fatal(err)
	}
	return env, p
}

func (f *sealedFixture) postHPKE(t *testing.T, env []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+"/", envelope.ContentType, bytes.NewReader(env))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func decodeSeen(t *testing.T, data []byte) seen {
	t.Helper()
	var r api.Response
	if err := json.Unmarshal(data, &r); err != nil || r.Error != nil || string(r.ID) != "7" {
		t.Fatalf("response %s: %v", data, err)
	}
	var s seen
	if err := json.Unmarshal(r.Result, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func refusalCode(t *testing.T, data []byte) int {
	t.Helper()
	var r api.Response
	if err := json.Unmarshal(data, &r); err != nil || r.Error == nil || string(r.ID) != "null" {
		t.Fatalf("want a plaintext error with id null, got %s (%v)", data, err)
	}
	return r.Error.Code
}

// openReply opens a sealed HPKE response and returns the sealed status and
// JSON-RPC response.
func openReply(t *testing.T, p *envelope.Pending, data []byte) (int, []byte) {
	t.Helper()
	plain, err := p.OpenResponse(data)
	if err != nil {
		t.Fatalf("opening the response: %v", err)
	}
	r, err := DecodeSealedReply(plain)
	if err != nil {
		t.Fatal(err)
	}
	return r.Status, r.RPC
}

// sealedRefusalCode opens a sealed refusal and returns its JSON-RPC code.
func sealedRefusalCode(t *testing.T, status int, rpc []byte) int {
	t.Helper()
	var r api.Response
	if err := json.Unmarshal(rpc, &r); err != nil || r.Error == nil || string(r.ID) != "null" || status != http.StatusBadRequest {
		t.Fatalf("want a sealed error with id null and status 400, got %d %s (%v)", status, rpc, err)
	}
	return r.Error.Code
}

func TestSealedHPKERoundTrip(t *testing.T) {
	f := newSealedFixture(t, false)
	for _, sk := range []hpke.PrivateKey{f.xwing, f.x255} {
		env, pending := sealHPKE(t, sk.PublicKey(), "test_seen", "app-1", seenBody, time.Now())
		resp, data := f.postHPKE(t, env)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != envelope.ContentType {
			t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
		}
		if bytes.Contains(data, []byte("héllo")) || bytes.Contains(data, []byte("proof-for")) {
			t.Fatal("response not sealed")
		}
		status, plain := openReply(t, pending, data)
		if status != resp.StatusCode {
			t.Fatalf("sealed status %d, HTTP %d", status, resp.StatusCode)
		}
		got := decodeSeen(t, plain)
		if got != (seen{Proofs: "proof-for-app-1", Scope: "app-1", Mode: envelope.ModeHPKE.String(), S: "héllo"}) {
			t.Fatalf("handler saw %+v", got)
		}
	}
	// A batch binds the methods joined by commas.
	batch := `[` + seenBody + `,{"jsonrpc":"2.0","id":8,"method":"test_seen","params":{"s":"b"}}]`
	env, pending := sealHPKE(t, f.xwing.PublicKey(), "test_seen,test_seen", "", batch, time.Now())
	_, data := f.postHPKE(t, env)
	_, plain := openReply(t, pending, data)
	var out []api.Response
	if err := json.Unmarshal(plain, &out); err != nil || len(out) != 2 {
		t.Fatalf("batch: %s", plain)
	}
	// A notification gets a sealed empty answer.
	env, pending = sealHPKE(t, f.xwing.PublicKey(), "test_seen", "", `{"jsonrpc":"2.0","method":"test_seen","params":{"s":"n"}}`, time.Now())
	resp, data := f.postHPKE(t, env)
	if status, plain := openReply(t, pending, data); len(plain) != 0 || resp.StatusCode != http.StatusOK || status != http.StatusOK {
		t.Fatalf("notification: %d %d %q", resp.StatusCode, status, plain)
	}
}

// TestSealedHPKERejections: each kind of bad request gets its own code,
// reaches no handler and consumes nothing: the untouched request still
// goes through afterwards.
func TestSealedHPKERejections(t *testing.T) {
	f := newSealedFixture(t, false)
	pk := f.xwing.PublicKey()
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	other := newHPKEKey(t, envelope.KEMXWing)
	// A request that opened is refused with a sealed answer (sealed: the
	// pending state of the last sealed request, to open it).
	var pending *envelope.Pending
	cases := []struct {
		name   string
		make   func() (tampered, original []byte)
		code   int
		sealed bool
	}{
		{"tampered ciphertext", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return flip(env, len(env)-1), env
		}, api.CodeSealedCiphertext, false},
		{"tampered AAD (scope)", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, pk, "test_seen", "scope-a", seenBody, time.Now())
			return bytes.Replace(env, []byte("scope-a"), []byte("scope-b"), 1), env
		}, api.CodeSealedHeader, false},
		{"tampered AAD (method)", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return bytes.Replace(env, []byte("test_seen"), []byte("test_seeN"), 1), env
		}, api.CodeSealedHeader, false},
		{"wrong key", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, other.PublicKey(), "test_seen", "s", seenBody, time.Now())
			env2, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return env, env2
		}, api.CodeSealedUnknownKey, false},
		{"expired", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now().Add(-10*time.Minute))
			env2, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return env, env2
		}, api.CodeSealedExpired, false},
		{"from the future", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now().Add(10*time.Minute))
			env2, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return env, env2
		}, api.CodeSealedExpired, false},
		{"sealed for another method", func() ([]byte, []byte) {
			var env []byte
			env, pending = sealHPKE(t, pk, "keymesh_nodeInfo", "s", seenBody, time.Now())
			env2, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return env, env2
		}, api.CodeSealedBinding, true},
		{"truncated", func() ([]byte, []byte) {
			env, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return env[:len(env)/2], env
		}, api.CodeSealedMalformed, false},
		{"sealed garbage", func() ([]byte, []byte) {
			inner := []byte(`{"rpc":` + seenBody + `,"extra":1}`)
			env, p, err := envelope.SealRequest(pk, envelope.Request{Method: "test_seen", Body: inner}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			pending = p
			env2, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
			return env, env2
		}, api.CodeSealedMalformed, true},
	}
	seenCodes := map[int]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad, good := c.make()
			before := f.calls.Load()
			resp, data := f.postHPKE(t, bad)
			var code int
			if c.sealed {
				status, rpc := openReply(t, pending, data)
				code = sealedRefusalCode(t, status, rpc)
			} else {
				code = refusalCode(t, data)
			}
			if code != c.code || resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("HTTP %d code %d, want 400 %d: %s", resp.StatusCode, code, c.code, data)
			}
			if f.calls.Load() != before {
				t.Fatal("a refused request reached a handler")
			}
			if resp, data := f.postHPKE(t, good); resp.StatusCode != http.StatusOK {
				t.Fatalf("the untouched request after the refusal: HTTP %d %s", resp.StatusCode, data)
			}
			seenCodes[c.code] = true
		})
	}
	if len(seenCodes) != 6 {
		t.Fatalf("distinct codes %v", seenCodes)
	}

	// Replay: the same envelope twice; the second is refused.
	env, _ := sealHPKE(t, pk, "test_seen", "s", seenBody, time.Now())
	if resp, data := f.postHPKE(t, env); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: %s", data)
	}
	before := f.calls.Load()
	if _, data := f.postHPKE(t, env); refusalCode(t, data) != api.CodeSealedReplay {
		t.Fatalf("replay: %s", data)
	}
	if f.calls.Load() != before {
		t.Fatal("a replayed request reached a handler")
	}
}

func TestPlaintextRefused(t *testing.T) {
	f := newSealedFixture(t, false)
	resp, err := http.Post(f.srv.URL+"/", "application/json", strings.NewReader(seenBody))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if refusalCode(t, data) != api.CodePlaintextRefused || f.calls.Load() != 0 {
		t.Fatalf("plaintext: %s", data)
	}

	dev := newSealedFixture(t, true)
	req, _ := http.NewRequest("POST", dev.srv.URL+"/", strings.NewReader(seenBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(ProofsHeader, "plain-proof")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := decodeSeen(t, data); got != (seen{Proofs: "plain-proof", Mode: "plaintext", S: "héllo"}) {
		t.Fatalf("dev plaintext: %+v", got)
	}
	// A dev node still opens sealed requests.
	env, pending := sealHPKE(t, dev.xwing.PublicKey(), "test_seen", "x", seenBody, time.Now())
	_, data = dev.postHPKE(t, env)
	if _, plain := openReply(t, pending, data); decodeSeen(t, plain).Proofs != "proof-for-x" {
		t.Fatalf("dev sealed: %v", err)
	}
}

func (f *sealedFixture) postCompat(t *testing.T, ek string, fields map[string]string) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(fields)
	req, _ := http.NewRequest("POST", f.srv.URL+"/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(envelope.HeaderEncryptedKey, ek)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

func sealCompat(t *testing.T, pub *rsa.PublicKey, method string, now time.Time) (string, map[string]string, *envelope.CompatPending) {
	t.Helper()
	ek, fields, p, err := envelope.SealCompat(pub, envelope.CompatRequest{Method: method, Scope: "app-2", Fields: map[string][]byte{
		CompatFieldRPC: []byte(seenBody), CompatFieldAuth: []byte("compat-proof"),
	}}, now)
	if err != nil {
		t.Fatal(err)
	}
	return ek, fields, p
}

func TestSealedCompat(t *testing.T) {
	f := newSealedFixture(t, false)
	pub := &f.rsa.PublicKey
	ek, fields, pending := sealCompat(t, pub, "test_seen", time.Now())
	resp, data := f.postCompat(t, ek, fields)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, data)
	}
	var out map[string]string
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	got, err := pending.OpenResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := ParseCompatStatus(got[CompatFieldStatus]); err != nil || st != resp.StatusCode {
		t.Fatalf("sealed status %q: %v", got[CompatFieldStatus], err)
	}
	if s := decodeSeen(t, got[CompatFieldRPC]); s != (seen{Proofs: "compat-proof", Scope: "app-2", Mode: "compat", S: "héllo"}) {
		t.Fatalf("handler saw %+v", s)
	}
	if _, data := f.postCompat(t, ek, fields); refusalCode(t, data) != api.CodeSealedReplay {
		t.Fatalf("replay: %s", data)
	}

	flipField := func(fields map[string]string, name string) map[string]string {
		c := map[string]string{}
		for k, v := range fields {
			c[k] = v
		}
		raw, _ := base64.StdEncoding.DecodeString(c[name])
		raw[len(raw)-1] ^= 1
		c[name] = base64.StdEncoding.EncodeToString(raw)
		return c
	}
	_, other := testRSA(t)
	var compatPending *envelope.CompatPending
	for _, c := range []struct {
		name   string
		code   int
		make   func() (string, map[string]string, string, map[string]string)
		sealed bool
	}{
		{"tampered field", api.CodeSealedCiphertext, func() (string, map[string]string, string, map[string]string) {
			ek, fs, _ := sealCompat(t, pub, "test_seen", time.Now())
			return ek, flipField(fs, CompatFieldRPC), ek, fs
		}, false},
		{"tampered meta", api.CodeSealedHeader, func() (string, map[string]string, string, map[string]string) {
			ek, fs, _ := sealCompat(t, pub, "test_seen", time.Now())
			return ek, flipField(fs, envelope.MetaField), ek, fs
		}, false},
		{"wrong key", api.CodeSealedUnknownKey, func() (string, map[string]string, string, map[string]string) {
			ek, fs, _ := sealCompat(t, &other.PublicKey, "test_seen", time.Now())
			ek2, fs2, _ := sealCompat(t, pub, "test_seen", time.Now())
			return ek, fs, ek2, fs2
		}, false},
		{"expired", api.CodeSealedExpired, func() (string, map[string]string, string, map[string]string) {
			ek, fs, _ := sealCompat(t, pub, "test_seen", time.Now().Add(-time.Hour))
			ek2, fs2, _ := sealCompat(t, pub, "test_seen", time.Now())
			return ek, fs, ek2, fs2
		}, false},
		{"another method", api.CodeSealedBinding, func() (string, map[string]string, string, map[string]string) {
			var (
				ek string
				fs map[string]string
			)
			ek, fs, compatPending = sealCompat(t, pub, "keymesh_nodeInfo", time.Now())
			ek2, fs2, _ := sealCompat(t, pub, "test_seen", time.Now())
			return ek, fs, ek2, fs2
		}, true},
		{"not an object of strings", api.CodeSealedMalformed, func() (string, map[string]string, string, map[string]string) {
			ek, fs, _ := sealCompat(t, pub, "test_seen", time.Now())
			return ek, nil, ek, fs
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			bek, bfs, gek, gfs := c.make()
			before := f.calls.Load()
			var data []byte
			if bfs == nil {
				req, _ := http.NewRequest("POST", f.srv.URL+"/", strings.NewReader(`{"rpc":1}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(envelope.HeaderEncryptedKey, bek)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				data, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			} else {
				_, data = f.postCompat(t, bek, bfs)
			}
			var code int
			if c.sealed {
				var out map[string]string
				if err := json.Unmarshal(data, &out); err != nil {
					t.Fatal(err)
				}
				got, err := compatPending.OpenResponse(out)
				if err != nil {
					t.Fatal(err)
				}
				st, err := ParseCompatStatus(got[CompatFieldStatus])
				if err != nil {
					t.Fatal(err)
				}
				code = sealedRefusalCode(t, st, got[CompatFieldRPC])
			} else {
				code = refusalCode(t, data)
			}
			if code != c.code {
				t.Fatalf("code %d, want %d: %.300s", code, c.code, data)
			}
			if f.calls.Load() != before {
				t.Fatal("a refused request reached a handler")
			}
			if resp, data := f.postCompat(t, gek, gfs); resp.StatusCode != http.StatusOK {
				t.Fatalf("the untouched request after the refusal: %s", data)
			}
		})
	}
}

func TestSealedMethod(t *testing.T) {
	for body, want := range map[string]string{
		seenBody:                           "test_seen",
		` [{"method":"a"},{"method":"b"}]`: "a,b",
		`[]`:                               "",
		`{"method":1}`:                     "",
		`nonsense`:                         "",
		`[{"method":"a"}] x`:               "",
		`[{"method":"a"},1]`:               "",
	} {
		if got := SealedMethod([]byte(body)); got != want {
			t.Errorf("SealedMethod(%s) = %q, want %q", body, got, want)
		}
	}
	// MaxBatch requests are named; one more and the batch is not read
	// further (issue 16: it was unmarshalled whole, 500k elements included).
	full := "[" + strings.TrimSuffix(strings.Repeat(`{"method":"a"},`, api.MaxBatch), ",") + "]"
	if got := SealedMethod([]byte(full)); got != strings.TrimSuffix(strings.Repeat("a,", api.MaxBatch), ",") {
		t.Errorf("batch of MaxBatch: %q", got)
	}
	huge := hugeBatch(500_000)
	if got := SealedMethod(huge); got != "" {
		t.Errorf("batch of 500k: %q", got)
	}
	allocs := testing.AllocsPerRun(3, func() { SealedMethod(huge) })
	if allocs > 20*api.MaxBatch {
		t.Errorf("naming a batch of 500k took %.0f allocations", allocs)
	}
}

func FuzzDecodeSealedCall(f *testing.F) {
	f.Add([]byte(`{"rpc":{"jsonrpc":"2.0","id":1,"method":"m"},"auth":"x"}`))
	f.Add([]byte(`{"rpc":null}`))
	f.Add([]byte(`{"rpc":[1],"auth":"x"} {}`))
	f.Add([]byte(`{"rpc":1,"other":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeSealedCall(b)
		if err != nil {
			return
		}
		if len(c.RPC) == 0 || !json.Valid(c.RPC) {
			t.Fatalf("accepted %q with RPC %q", b, c.RPC)
		}
		again, err := EncodeSealedCall(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeSealedCall(again)
		if err != nil || !jsonEqual(c2.RPC, c.RPC) || c2.Auth != c.Auth {
			t.Fatalf("round trip %q → %q: %v", b, again, err)
		}
	})
}

// FuzzSealedRequest sends arbitrary bodies as sealed requests (both modes):
// none may reach a handler or crash the server, and each gets a
// plaintext refusal.
func FuzzSealedRequest(f *testing.F) {
	f.Add([]byte("KM"), false, "")
	f.Add([]byte(`{"rpc":"x","_keymesh":"AAAA"}`), true, "AAAA")
	f.Add([]byte(`{}`), true, "!!")
	fx := &sealedFixture{}
	nonces := &envelope.MemoryNonceStore{}
	op, _ := envelope.NewOpener(nonces, 0, nil, newHPKEKey(f, envelope.KEMXWing))
	k, _ := testRSA(f)
	cop, _ := envelope.NewCompatOpener(nonces, 0, nil, k)
	reg := NewRegistry()
	reg.Register("test_seen", func(context.Context, json.RawMessage) (any, error) {
		fx.calls.Add(1)
		return nil, nil
	})
	h := NewHandler(Options{Registry: reg, Sealing: &Sealing{Openers: func(context.Context) (*envelope.Opener, *envelope.CompatOpener, error) {
		return op, cop, nil
	}}})
	f.Fuzz(func(t *testing.T, body []byte, compat bool, ek string) {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		if compat {
			if ek == "" {
				ek = "x"
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(envelope.HeaderEncryptedKey, ek)
		} else {
			req.Header.Set("Content-Type", envelope.ContentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || fx.calls.Load() != 0 {
			t.Fatalf("HTTP %d, calls %d: %s", rec.Code, fx.calls.Load(), rec.Body.Bytes())
		}
	})
}

// TestSealedBodyLimit: a JSON-RPC body just under api.MaxBodyBytes still
// fits once sealed, in both modes; a larger one is refused.
func TestSealedBodyLimit(t *testing.T) {
	f := newSealedFixture(t, false)
	big := func(n int) string {
		return `{"jsonrpc":"2.0","id":7,"method":"test_seen","params":{"s":"` + strings.Repeat("a", n) + `"}}`
	}
	okBody := big(api.MaxBodyBytes - 200)
	env, pending := sealHPKE(t, f.xwing.PublicKey(), "test_seen", "", okBody, time.Now())
	_, data := f.postHPKE(t, env)
	if _, plain := openReply(t, pending, data); len(decodeSeen(t, plain).S) != api.MaxBodyBytes-200 {
		t.Fatal("HPKE near the limit")
	}
	ek, fields, _, err := envelope.SealCompat(&f.rsa.PublicKey, envelope.CompatRequest{Method: "test_seen",
		Fields: map[string][]byte{CompatFieldRPC: []byte(okBody)}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if resp, data := f.postCompat(t, ek, fields); resp.StatusCode != http.StatusOK {
		t.Fatalf("compat near the limit: HTTP %d %.200s", resp.StatusCode, data)
	}
	env, pending = sealHPKE(t, f.xwing.PublicKey(), "test_seen", "", big(api.MaxBodyBytes+10), time.Now())
	resp, data := f.postHPKE(t, env)
	// The request opened, so the refusal is sealed, its status inside.
	status, rpc := openReply(t, pending, data)
	var r api.Response
	if json.Unmarshal(rpc, &r) != nil || r.Error == nil || r.Error.Code != api.CodeLimitExceeded ||
		resp.StatusCode != http.StatusRequestEntityTooLarge || status != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit: HTTP %d sealed %d %.200s", resp.StatusCode, status, rpc)
	}
}

func FuzzDecodeSealedReply(f *testing.F) {
	f.Add([]byte(`{"status":200,"rpc":{"jsonrpc":"2.0","id":1,"result":1}}`))
	f.Add([]byte(`{"status":400}`))
	f.Add([]byte(`{"status":200,"rpc":null}`))
	f.Add([]byte(`{"status":200,"rpc":{"a":"<&>"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := DecodeSealedReply(in)
		if err != nil {
			return
		}
		out, err := EncodeSealedReply(r)
		if err != nil {
			t.Fatalf("decoded reply does not encode: %v", err)
		}
		back, err := DecodeSealedReply(out)
		if err != nil || back.Status != r.Status {
			t.Fatalf("round trip: status %d, %d: %v", r.Status, back.Status, err)
		}
		// The JSON-RPC response is kept as written, up to insignificant
		// white space.
		var want, got bytes.Buffer
		json.Compact(&want, r.RPC)
		json.Compact(&got, back.RPC)
		if want.String() != got.String() {
			t.Fatalf("round trip: rpc %q became %q", want.String(), got.String())
		}
	})
}

// fromAddr returns an HTTP client whose connections come from the loopback
// address ip (Linux routes all of 127/8 to lo), to play several sources.
func fromAddr(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestSealedFloodFromOneAddress: an attacker at one address sends valid
// sealed requests (anyone can seal to the node's public key) to a node
// with a small nonce store. Once over its share it is answered 429 with
// api.CodeRateLimited and a retry hint, sealed (not an internal error, as
// a full nonce store was before issue 16), and its calls do
// not run; a legitimate sealed request from another address succeeds, in
// both modes.
func TestSealedFloodFromOneAddress(t *testing.T) {
	f := newSealedFixtureWith(t, false, &envelope.MemoryNonceStore{Max: 64, PerSource: 8})
	attacker, user := fromAddr(t, "127.0.0.2"), fromAddr(t, "127.0.0.3")
	if _, err := attacker.Get(f.srv.URL + "/healthz"); err != nil {
		t.Skipf("cannot send from 127.0.0.2: %v", err)
	}
	post := func(hc *http.Client, env []byte) (*http.Response, []byte) {
		t.Helper()
		resp, err := hc.Post(f.srv.URL+"/", envelope.ContentType, bytes.NewReader(env))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	busy := 0
	for i := 0; i < 40; i++ {
		env, p := sealHPKE(t, f.xwing.PublicKey(), "test_seen", "s", seenBody, time.Now())
		resp, data := post(attacker, env)
		if resp.StatusCode == http.StatusOK {
			continue
		}
		st, rpc := openReply(t, p, data) // sealed: the client can trust it
		var r api.Response
		if err := json.Unmarshal(rpc, &r); err != nil || r.Error == nil || r.Error.Code != api.CodeRateLimited ||
			!strings.Contains(string(r.Error.Data), `"limit":"sealed-client"`) ||
			st != http.StatusTooManyRequests || resp.StatusCode != st {
			t.Fatalf("flood request %d: HTTP %d, sealed %d %s", i, resp.StatusCode, st, rpc)
		}
		busy++
	}
	if busy != 32 || f.calls.Load() != 8 {
		t.Fatalf("%d busy refusals, %d calls ran; want 32 and 8", busy, f.calls.Load())
	}
	env, p := sealHPKE(t, f.xwing.PublicKey(), "test_seen", "s", seenBody, time.Now())
	resp, data := post(user, env)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("legitimate request under the flood: HTTP %d %s", resp.StatusCode, data)
	}
	if st, rpc := openReply(t, p, data); st != http.StatusOK || decodeSeen(t, rpc).S != "héllo" {
		t.Fatalf("legitimate request: %d %s", st, rpc)
	}
	// Compatibility mode shares the store and the refusal.
	ek, fields, cp, err := envelope.SealCompat(&f.rsa.PublicKey, envelope.CompatRequest{Method: "test_seen", Scope: "s",
		Fields: map[string][]byte{CompatFieldRPC: []byte(seenBody)}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(fields)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(envelope.HeaderEncryptedKey, ek)
	cresp, err := attacker.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer cresp.Body.Close()
	var sealed map[string]string
	if err := json.NewDecoder(cresp.Body).Decode(&sealed); err != nil {
		t.Fatal(err)
	}
	out, err := cp.OpenResponse(sealed)
	if err != nil || cresp.StatusCode != http.StatusTooManyRequests || string(out[CompatFieldStatus]) != "429" {
		t.Fatalf("compat request over the share: HTTP %d, %v", cresp.StatusCode, err)
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7:443":               "192.0.2.7",
		"[::ffff:192.0.2.7]:1":        "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:8080": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:8080": "2001:db8:1:2::/64",
		"@":                           "@",
	} {
		if got := SourceOf(in); got != want {
			t.Errorf("SourceOf(%q) = %q, want %q", in, got, want)
		}
	}
}
