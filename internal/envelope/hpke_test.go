package envelope

import (
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func newKey(t testing.TB, kem hpke.KEM) hpke.PrivateKey {
	t.Helper()
	k, err := kem.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newOpener(t testing.TB, now *time.Time, keys ...hpke.PrivateKey) (*Opener, *MemoryNonceStore) {
	t.Helper()
	ns := &MemoryNonceStore{Now: func() time.Time { return *now }}
	o, err := NewOpener(ns, 0, func() time.Time { return *now }, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return o, ns
}

func TestRoundTrip(t *testing.T) {
	x25519, _ := hpke.NewKEM(KEMX25519)
	for _, kem := range []hpke.KEM{hpke.MLKEM768X25519(), x25519} {
		t.Run(strconv.Itoa(int(kem.ID())), func(t *testing.T) {
			now := t0
			k := newKey(t, kem)
			o, _ := newOpener(t, &now, k)
			pk, err := ParsePublicKey(kem.ID(), k.PublicKey().Bytes())
			if err != nil {
				t.Fatal(err)
			}
			req := Request{Method: "personal_sign", Scope: "scope-1", Body: []byte(`{"jsonrpc":"2.0"}`)}
			env, pending, err := SealRequest(pk, req, now.Add(-time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(env, req.Body) {
				t.Fatal("envelope contains the body")
			}
			got, err := o.Open(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != req.Method || got.Scope != req.Scope || !bytes.Equal(got.Body, req.Body) ||
				!got.Time.Equal(now.Add(-time.Second)) {
				t.Fatalf("opened %+v", got)
			}
			if err := got.Check("personal_sign", "scope-1"); err != nil {
				t.Fatal(err)
			}
			for _, c := range [][2]string{{"eth_signTransaction", "scope-1"}, {"personal_sign", "scope-2"}} {
				if err := got.Check(c[0], c[1]); !errors.Is(err, ErrBinding) {
					t.Fatalf("Check(%q, %q) = %v", c[0], c[1], err)
				}
			}
			resp, err := got.SealResponse([]byte("result"))
			if err != nil {
				t.Fatal(err)
			}
			// A tampered response does not open, and does not use up pending.
			bad := bytes.Clone(resp)
			bad[len(bad)-1] ^= 1
			if _, err := pending.OpenResponse(bad); !errors.Is(err, ErrCiphertext) {
				t.Fatalf("tampered response: %v", err)
			}
			// Another request's pending state cannot open this response.
			_, other, _ := SealRequest(pk, req, now)
			if _, err := other.OpenResponse(resp); !errors.Is(err, ErrCiphertext) {
				t.Fatalf("response opened by another request: %v", err)
			}
			pt, err := pending.OpenResponse(resp)
			if err != nil || string(pt) != "result" {
				t.Fatalf("response: %q %v", pt, err)
			}
		})
	}
}

// TestRejections checks each failure named by the issue: a tampered
// ciphertext, tampered AAD, wrong key, replayed request and expired timestamp
// are rejected with distinct errors, and none of them changes anything: the
// genuine request still opens afterwards, once.
func TestRejections(t *testing.T) {
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	o, ns := newOpener(t, &now, k)
	seal := func(r Request, at time.Time) []byte {
		env, _, err := SealRequest(k.PublicKey(), r, at)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	req := Request{Method: "eth_signTransaction", Scope: "s", Body: []byte("tx")}
	env := seal(req, now)
	p, err := parseRequest(env)
	if err != nil {
		t.Fatal(err)
	}

	flip := func(i int) []byte { c := bytes.Clone(env); c[i] ^= 1; return c }
	methodAt := len(requestMagic) + 6 + keyIDLen + 8 + nonceLen + 1
	cases := []struct {
		name string
		env  []byte
		want error
	}{
		{"tampered ciphertext", flip(len(env) - 1), ErrCiphertext},
		{"tampered AAD: method", flip(methodAt), ErrHeader},
		{"tampered AAD: timestamp", flip(len(requestMagic) + 6 + keyIDLen + 7), ErrHeader},
		{"tampered AAD: nonce", flip(len(requestMagic) + 6 + keyIDLen + 8), ErrHeader},
		{"tampered AAD: enc", flip(p.headerLen - 1), ErrHeader},
		{"tampered header MAC", flip(p.headerLen), ErrHeader},
		{"wrong key", func() []byte {
			e, _, _ := SealRequest(newKey(t, hpke.MLKEM768X25519()).PublicKey(), req, now)
			return e
		}(), ErrUnknownKey},
		{"expired", seal(req, now.Add(-DefaultWindow-time.Millisecond)), ErrExpired},
		{"from the future", seal(req, now.Add(DefaultWindow+time.Millisecond)), ErrExpired},
		{"truncated", env[:len(env)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(env), 0), ErrMalformed},
	}
	for _, c := range cases {
		if _, err := o.Open(context.Background(), c.env); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		for _, other := range []error{ErrMalformed, ErrUnknownKey, ErrHeader, ErrCiphertext, ErrExpired, ErrReplay} {
			if other != c.want && errors.Is(errorOf(o, c.env), other) {
				t.Errorf("%s: error also matches %v", c.name, other)
			}
		}
	}
	if ns.Len() != 0 {
		t.Fatalf("rejected requests recorded %d nonces", ns.Len())
	}
	if _, err := o.Open(context.Background(), env); err != nil {
		t.Fatalf("genuine request after rejections: %v", err)
	}
	if _, err := o.Open(context.Background(), env); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: err = %v", err)
	}
	// A bit flipped in any byte is rejected (bit i%8 of byte i, to keep the
	// test fast).
	for i := range env {
		c := bytes.Clone(env)
		c[i] ^= 1 << (i % 8)
		if _, err := o.Open(context.Background(), c); err == nil {
			t.Fatalf("byte %d flipped: opened", i)
		}
	}
}

func errorOf(o *Opener, env []byte) error {
	_, err := o.Open(context.Background(), env)
	return err
}

func TestReplayAfterExpiry(t *testing.T) {
	// A nonce is remembered for as long as its timestamp is acceptable, so a
	// replay is caught until it would be rejected as expired anyway.
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	o, _ := newOpener(t, &now, k)
	env, _, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now)
	if _, err := o.Open(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	now = now.Add(DefaultWindow)
	if _, err := o.Open(context.Background(), env); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay at the window's edge: %v", err)
	}
	now = now.Add(time.Millisecond)
	if _, err := o.Open(context.Background(), env); !errors.Is(err, ErrExpired) {
		t.Fatalf("replay after the window: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	now := t0
	old, cur := newKey(t, hpke.MLKEM768X25519()), newKey(t, hpke.MLKEM768X25519())
	o, _ := newOpener(t, &now, cur, old)
	for _, k := range []hpke.PrivateKey{old, cur} {
		env, _, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now)
		if _, err := o.Open(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ParsePublicKey(0x0010, make([]byte, 65)); err == nil {
		t.Fatal("P-256 KEM allowed")
	}
	if _, err := NewOpener(&MemoryNonceStore{}, 0, nil, newKey(t, hpke.MLKEM768())); err == nil {
		t.Fatal("ML-KEM-768 alone allowed")
	}
}

func TestMemoryNonceStore(t *testing.T) {
	now := t0
	s := &MemoryNonceStore{Max: 4, PerSource: 2, Now: func() time.Time { return now }}
	from := func(src string) context.Context { return WithSource(context.Background(), src) }
	seen := func(src, n string, exp time.Time) bool {
		t.Helper()
		ok, err := s.Seen(from(src), []byte(n), exp)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if seen("x", "a", now.Add(time.Minute)) || !seen("x", "a", now.Add(time.Minute)) || seen("x", "b", now.Add(2*time.Minute)) {
		t.Fatal("first/second sighting wrong")
	}
	// Source x is at its share: x is refused, y is not, and a replay of
	// x's nonce from y is still a replay.
	if _, err := s.Seen(from("x"), []byte("c"), now.Add(time.Minute)); !errors.Is(err, ErrBusy) {
		t.Fatalf("source over its share: %v", err)
	}
	if !seen("y", "a", now.Add(time.Minute)) || seen("y", "c", now.Add(time.Minute)) {
		t.Fatal("other source")
	}
	// Max reached (x: a, b; y: c, d): the earliest expiry (a) is forgotten
	// and the floor rises to it, so a replay of a is refused as expired.
	if seen("y", "d", now.Add(90*time.Second)) || seen("z", "e", now.Add(3*time.Minute)) {
		t.Fatal("insert at max")
	}
	if s.Len() != 4 {
		t.Fatalf("%d nonces held, max 4", s.Len())
	}
	if _, err := s.Seen(from("z"), []byte("a"), now.Add(time.Minute)); !errors.Is(err, ErrExpired) {
		t.Fatalf("replay of a forgotten nonce: %v", err)
	}
	now = now.Add(90 * time.Second) // c and d expired; x holds b only
	if seen("x", "f", now.Add(time.Minute)) || !seen("x", "b", now.Add(time.Minute)) {
		t.Fatal("after expiry")
	}
	s.Restore([]byte("g"), now.Add(time.Minute))
	if !seen("w", "g", now.Add(time.Minute)) {
		t.Fatal("restored nonce not seen")
	}
}

// TestFloodFromOneSource plays an attacker who seals valid requests (anyone
// can: the node's key is public) from one address as fast as it likes, to a
// node with a small nonce store: the attacker is refused once over its
// share, and a legitimate request from another address still opens; its
// replay is still refused, from any address.
func TestFloodFromOneSource(t *testing.T) {
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	ns := &MemoryNonceStore{Max: 64, PerSource: 8, Now: func() time.Time { return now }}
	o, err := NewOpener(ns, 0, func() time.Time { return now }, k)
	if err != nil {
		t.Fatal(err)
	}
	attacker := WithSource(context.Background(), "203.0.113.9")
	busy := 0
	for i := 0; i < 500; i++ {
		env, _, _ := SealRequest(k.PublicKey(), Request{Method: "junk", Body: []byte(`{}`)}, now)
		opened, err := o.Open(attacker, env)
		switch {
		case err == nil:
		case errors.Is(err, ErrBusy):
			busy++
			if opened == nil || opened.Body != nil {
				t.Fatal("a busy refusal must come with an Opened to seal it, and no body")
			}
			if _, err := opened.SealResponse([]byte(`{"status":429}`)); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("flood request %d: %v", i, err)
		}
	}
	if busy != 500-8 || ns.Len() != 8 {
		t.Fatalf("%d of 500 refused as busy, %d nonces held; want 492 and 8", busy, ns.Len())
	}
	// Junk that does not open records nothing.
	for i := 0; i < 100; i++ {
		env, _, _ := SealRequest(k.PublicKey(), Request{Method: "junk"}, now)
		env[len(env)-1] ^= 1
		if _, err := o.Open(attacker, env); !errors.Is(err, ErrCiphertext) {
			t.Fatal(err)
		}
	}
	if ns.Len() != 8 {
		t.Fatalf("junk that does not open was recorded: %d nonces", ns.Len())
	}
	user := WithSource(context.Background(), "198.51.100.7")
	env, _, _ := SealRequest(k.PublicKey(), Request{Method: "personal_sign", Body: []byte(`{"ok":1}`)}, now)
	got, err := o.Open(user, env)
	if err != nil || string(got.Body) != `{"ok":1}` {
		t.Fatalf("the legitimate request failed under the flood: %v", err)
	}
	for _, ctx := range []context.Context{user, attacker, context.Background()} {
		if _, err := o.Open(ctx, env); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay under the flood: %v", err)
		}
	}
}

// TestFloodFromManySources: an attacker with more addresses than the store
// has shares keeps it full, sealing ahead of the node's clock as far as it
// accepts. Sealed traffic does not fail: the oldest nonces are forgotten
// (their replays refused as expired), and a request sealed now still opens
// as long as the store holds more than MaxSkew of the flood.
func TestFloodFromManySources(t *testing.T) {
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	ns := &MemoryNonceStore{Max: 256, PerSource: 4, Now: func() time.Time { return now }}
	o, _ := NewOpener(ns, 0, func() time.Time { return now }, k)
	user := WithSource(context.Background(), "198.51.100.7")
	early, _, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now.Add(-10*time.Second))
	if _, err := o.Open(user, early); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		now = now.Add(50 * time.Millisecond) // the store holds 12.8 s of flood
		env, _, _ := SealRequest(k.PublicKey(), Request{Method: "junk"}, now.Add(MaxSkew))
		src := WithSource(context.Background(), fmt.Sprintf("203.0.113.%d", i/4))
		if _, err := o.Open(src, env); err != nil {
			t.Fatalf("flood request %d: %v", i, err)
		}
	}
	if ns.Len() > 256 {
		t.Fatalf("%d nonces held, max 256", ns.Len())
	}
	for i := 0; i < 3; i++ {
		env, _, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now.Add(-time.Second))
		if _, err := o.Open(user, env); err != nil {
			t.Fatalf("legitimate request %d under the flood: %v", i, err)
		}
	}
	now = t0.Add(20 * time.Second) // back within the early request's window
	if _, err := o.Open(user, early); !errors.Is(err, ErrExpired) {
		t.Fatalf("replay of a forgotten request: %v", err)
	}
}

// TestWrongNode: a request sealed for node A is refused by node B, even if
// B holds the same request key (an operator who copied it), and nothing is
// recorded.
func TestWrongNode(t *testing.T) {
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	var nodeA, nodeB NodeID
	nodeA[0], nodeB[0] = 1, 2
	a, _ := newOpener(t, &now, k)
	a.BindNode(nodeA)
	b, nsB := newOpener(t, &now, k)
	b.BindNode(nodeB)
	env, _, _ := SealRequest(k.PublicKey(), Request{Node: nodeA, Method: "m"}, now)
	if _, err := b.Open(context.Background(), env); !errors.Is(err, ErrWrongNode) || !errors.Is(err, ErrBinding) {
		t.Fatalf("node B opened node A's request: %v", err)
	}
	if nsB.Len() != 0 {
		t.Fatal("a refused request was recorded")
	}
	if _, err := a.Open(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	// The node id is authenticated: changing it in the header breaks the MAC.
	env2, _, _ := SealRequest(k.PublicKey(), Request{Node: nodeA, Method: "m"}, now)
	env2[len(requestMagic)+6+keyIDLen] ^= 3
	if _, err := b.Open(context.Background(), env2); !errors.Is(err, ErrHeader) {
		t.Fatalf("altered node id: %v", err)
	}
}

func TestFutureSkew(t *testing.T) {
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	o, _ := newOpener(t, &now, k)
	ok, _, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now.Add(MaxSkew))
	late, _, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now.Add(MaxSkew+time.Millisecond))
	if _, err := o.Open(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Open(context.Background(), late); !errors.Is(err, ErrExpired) {
		t.Fatalf("more than half a window ahead: %v", err)
	}
}

// TestVectors runs the RFC 9180 and draft-ietf-hpke-pq vectors for this
// package's two suites through recipient(), the function Open uses to check
// an envelope's suite and set up its context, and through ParsePublicKey.
func TestVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/hpke_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		KEM         uint16 `json:"kem_id,string"`
		KDF         uint16 `json:"kdf_id,string"`
		AEAD        uint16 `json:"aead_id,string"`
		Info        string
		SkRm        string
		PkRm        string
		Enc         string
		Encryptions []struct{ Aad, Ct, Pt string }
		Exports     []struct {
			Context string `json:"exporter_context"`
			L       int
			Value   string `json:"exported_value"`
		}
		AccExports string `json:"exports_accumulated"`
	}
	// The two files differ in whether ids are numbers or strings; normalise.
	var raw []map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, r := range raw {
		for _, f := range []string{"kem_id", "kdf_id", "aead_id", "mode"} {
			r[f] = toString(r[f])
		}
	}
	norm, _ := json.Marshal(raw)
	if err := json.Unmarshal(norm, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("%d vectors", len(vs))
	}
	for _, v := range vs {
		t.Run(strconv.Itoa(int(v.KEM)), func(t *testing.T) {
			kem, err := allowedKEM(v.KEM)
			if err != nil {
				t.Fatal(err)
			}
			pk, err := ParsePublicKey(v.KEM, unhex(t, v.PkRm))
			if err != nil || !bytes.Equal(pk.Bytes(), unhex(t, v.PkRm)) {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			sk, err := kem.NewPrivateKey(unhex(t, v.SkRm))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := recipient(sk, v.KEM, v.KDF, 0x0002, unhex(t, v.Enc), unhex(t, v.Info)); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("AES-256-GCM suite accepted: %v", err)
			}
			r, err := recipient(sk, v.KEM, v.KDF, v.AEAD, unhex(t, v.Enc), unhex(t, v.Info))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range v.Encryptions {
				pt, err := r.Open(unhex(t, e.Aad), unhex(t, e.Ct))
				if err != nil || !bytes.Equal(pt, unhex(t, e.Pt)) {
					t.Fatalf("encryption %d: %v", n, err)
				}
				n++
			}
			for _, e := range v.Exports {
				got, err := r.Export(string(unhex(t, e.Context)), e.L)
				if err != nil || !bytes.Equal(got, unhex(t, e.Value)) {
					t.Fatalf("export %q: %x %v", e.Context, got, err)
				}
				n++
			}
			if v.AccExports != "" {
				// Accumulated exports as computed by Go's crypto/hpke tests.
				source, sink := sha3.NewSHAKE128(), sha3.NewSHAKE128()
				for l := range 1000 {
					ctx := string(draw(source))
					value, err := r.Export(ctx, l)
					if err != nil {
						t.Fatal(err)
					}
					sink.Write(value)
				}
				acc := make([]byte, 16)
				sink.Read(acc)
				if !bytes.Equal(acc, unhex(t, v.AccExports)) {
					t.Fatalf("accumulated exports %x", acc)
				}
				n++
			}
			if n == 0 {
				t.Fatal("vector checked nothing")
			}
		})
	}
}

func draw(r *sha3.SHAKE) []byte {
	l := make([]byte, 1)
	r.Read(l)
	b := make([]byte, l[0])
	r.Read(b)
	return b
}

func toString(v any) string {
	switch x := v.(type) {
	case float64:
		return strconv.Itoa(int(x))
	case string:
		return x
	}
	return ""
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStateNeverPrints(t *testing.T) {
	now := t0
	k := newKey(t, hpke.MLKEM768X25519())
	o, _ := newOpener(t, &now, k)
	env, pending, _ := SealRequest(k.PublicKey(), Request{Method: "m"}, now)
	opened, err := o.Open(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	secret := opened.respKey()[:]
	for _, v := range []any{opened, *opened, pending, *pending, struct{ O *Opened }{opened}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%d", "%s", "%q"} {
			out := fmt.Sprintf(verb, v)
			dec := fmt.Sprint(secret[:8])
			if strings.Contains(out, dec[1:len(dec)-1]) || strings.Contains(out, hex.EncodeToString(secret[:8])) {
				t.Fatalf("%s prints the response key: %s", verb, out)
			}
		}
	}
}

func TestDetectModeAndAdmit(t *testing.T) {
	h := http.Header{}
	if m := DetectMode(h); m != ModePlaintext || !errors.Is(Admit(m, false), ErrPlaintext) || Admit(m, true) != nil {
		t.Fatalf("plaintext: %v", m)
	}
	h.Set("Content-Type", ContentType)
	if m := DetectMode(h); m != ModeHPKE || Admit(m, false) != nil {
		t.Fatalf("hpke: %v", m)
	}
	h.Set(HeaderEncryptedKey, "abc")
	if m := DetectMode(h); m != ModeCompat || Admit(m, false) != nil {
		t.Fatalf("compat: %v", m)
	}
}
