package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/enclave/sim"
	"github.com/keymesh/keymesh/internal/envelope"
)

// fresh is the freshness of a document made now, with no challenge.
func fresh() Freshness {
	now := time.Now()
	return Freshness{Issued: now, Expires: now.Add(DefaultValidity)}
}

func backend(t *testing.T, dir, exeContent string) *sim.Backend {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(exe, []byte(exeContent), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := sim.Open(sim.Config{Dir: dir, Executable: exe})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeKeys generates the node's keys inside the backend, as the node does.
func nodeKeys(t *testing.T, b enclave.Backend) (Keys, *enclave.Key) {
	t.Helper()
	hk, _, err := b.GenerateKey(enclave.KeyHPKEXWing, "hpke")
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := b.GenerateKey(enclave.KeyEd25519, "identity")
	if err != nil {
		t.Fatal(err)
	}
	return Keys{HPKEKEM: envelope.KEMXWing, HPKE: hk.Public(), Identity: id.Public()}, hk
}

// TestEndToEnd: the node attests its HPKE key; the client verifies the
// document (through JSON, as served) with a pinned measurement and seals a
// request that the node opens.
func TestEndToEnd(t *testing.T) {
	b := backend(t, t.TempDir(), "node v1")
	keys, hk := nodeKeys(t, b)
	doc, err := New(b, keys, fresh())
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := json.Marshal(doc)
	var got Document
	if err := json.Unmarshal(wire, &got); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(&got, Policy{Measurements: []enclave.Measurement{b.Measurement()}, AllowSimulated: true,
		SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstUse || !res.Simulated || res.Measurement != b.Measurement() || len(res.Warnings) != 1 ||
		!bytes.Equal(res.Keys.Identity, keys.Identity) {
		t.Fatalf("result %+v", res)
	}
	pk, err := res.Keys.HPKEPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	env, _, err := envelope.SealRequest(pk, envelope.Request{Method: "eth_accounts"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sk, _ := hk.HPKE()
	o, _ := envelope.NewOpener(&envelope.MemoryNonceStore{}, 0, nil, sk)
	if _, err := o.Open(context.Background(), env); err != nil {
		t.Fatal(err)
	}
}

func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	b := backend(t, dir, "node v1")
	keys, _ := nodeKeys(t, b)
	doc, _ := New(b, keys, fresh())
	other := backend(t, dir, "node v2").Measurement()
	root := []ed25519.PublicKey{b.PlatformKey()}

	// Pinned to another build: refused, and the error names both.
	_, err := Verify(doc, Policy{Measurements: []enclave.Measurement{other}, AllowSimulated: true, SimPlatformKeys: root})
	var me *MeasurementError
	if !errors.As(err, &me) || me.Got != b.Measurement() {
		t.Fatalf("pinned mismatch: %v", err)
	}
	if !strings.Contains(err.Error(), b.Measurement().String()) || !strings.Contains(err.Error(), other.String()) {
		t.Fatalf("error does not say which: %v", err)
	}
	// Trust on first use: accepted with a warning naming the measurement.
	res, err := Verify(doc, Policy{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: root})
	if err != nil || !res.FirstUse || !strings.Contains(strings.Join(res.Warnings, "\n"), b.Measurement().String()) {
		t.Fatalf("TOFU: %+v %v", res, err)
	}
	if _, err := Verify(doc, Policy{AllowSimulated: true, SimPlatformKeys: root}); !errors.Is(err, ErrNoPin) {
		t.Fatalf("no pin: %v", err)
	}
	if _, err := Verify(doc, Policy{Measurements: []enclave.Measurement{b.Measurement()}, SimPlatformKeys: root}); !errors.Is(err, ErrSimulated) {
		t.Fatalf("simulated not allowed: %v", err)
	}
	stranger := backend(t, t.TempDir(), "x").PlatformKey()
	if _, err := Verify(doc, Policy{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []ed25519.PublicKey{stranger}}); !errors.Is(err, ErrQuote) {
		t.Fatalf("unpinned platform key: %v", err)
	}
	// No root: refused, and the error says where the root comes from.
	_, err = Verify(doc, Policy{Measurements: []enclave.Measurement{b.Measurement()}, AllowSimulated: true})
	if !errors.Is(err, ErrNoRoot) || !strings.Contains(err.Error(), "keymesh cluster init") || !strings.Contains(err.Error(), "--platform-key") {
		t.Fatalf("no root: %v", err)
	}
}

func TestBinding(t *testing.T) {
	b := backend(t, t.TempDir(), "node")
	keys, _ := nodeKeys(t, b)
	doc, _ := New(b, keys, fresh())
	p := Policy{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}}

	// A man in the middle swaps in his own HPKE key: the quote does not cover it.
	mitm, _ := nodeKeys(t, backend(t, t.TempDir(), "node"))
	swapped := *doc
	swapped.Keys, _ = mitm.MarshalBinary()
	if _, err := Verify(&swapped, p); !errors.Is(err, ErrKeysNotBound) {
		t.Fatalf("swapped keys: %v", err)
	}
	// A quote with changed report data no longer verifies.
	var q enclave.Quote
	q.UnmarshalBinary(doc.Quote)
	q.ReportData = ReportData(swapped.Keys, swapped.Fresh)
	forged := swapped
	forged.Quote, _ = q.MarshalBinary()
	if _, err := Verify(&forged, p); !errors.Is(err, ErrQuote) {
		t.Fatalf("forged quote: %v", err)
	}
	// A platform without a verifier yet.
	q.UnmarshalBinary(doc.Quote)
	q.Platform, q.Simulated = enclave.PlatformSGX, false
	sgx := *doc
	sgx.Quote, _ = q.MarshalBinary()
	if _, err := Verify(&sgx, p); !errors.Is(err, ErrUnsupportedPlatform) {
		t.Fatalf("sgx: %v", err)
	}
	// A sim quote relabelled as a hardware platform: its evidence is no
	// vendor's (hardware_test.go tests the real evidence).
	for _, platform := range []string{enclave.PlatformSEVSNP, enclave.PlatformTDX, enclave.PlatformNitro} {
		q.UnmarshalBinary(doc.Quote)
		q.Platform, q.Simulated = platform, false
		hw := *doc
		hw.Quote, _ = q.MarshalBinary()
		if _, err := Verify(&hw, p); !errors.Is(err, ErrQuote) {
			t.Fatalf("%s: %v", platform, err)
		}
	}
	if _, err := Verify(&Document{Keys: doc.Keys, Fresh: doc.Fresh, Quote: doc.Quote[:10]}, p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated quote: %v", err)
	}
}

func TestRSAKey(t *testing.T) {
	b := backend(t, t.TempDir(), "node")
	rk, _, err := b.GenerateKey(enclave.KeyRSA3072, "rsa")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := nodeKeys(t, b)
	keys.RSA = rk.Public()
	doc, _ := New(b, keys, fresh())
	res, err := Verify(doc, Policy{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := res.Keys.RSAPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := x509.MarshalPKIXPublicKey(pub)
	if !bytes.Equal(want, keys.RSA) {
		t.Fatal("RSA key changed")
	}
}

func TestMigrationWithQuoteVerifier(t *testing.T) {
	dir := t.TempDir()
	old, next := backend(t, dir, "v1"), backend(t, dir, "v2")
	s, _ := old.Seal([]byte("identity"), "id")
	target, req, _ := enclave.NewMigrationTarget(next)
	pin := func(m enclave.Measurement) enclave.Verifier {
		return QuoteVerifier(Policy{Measurements: []enclave.Measurement{m}, AllowSimulated: true,
			SimPlatformKeys: []ed25519.PublicKey{old.PlatformKey()}})
	}
	bundle, err := enclave.ExportMigration(old, req, pin(next.Measurement()), []enclave.Secret{{Label: "id", Sealed: s}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := target.Import(bundle, pin(old.Measurement()))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := next.Unseal(got[0].Sealed, "id"); err != nil || string(pt) != "identity" {
		t.Fatalf("%q %v", pt, err)
	}
}

func FuzzKeys(f *testing.F) {
	k := Keys{HPKEKEM: envelope.KEMXWing, HPKE: []byte{1, 2}, RSA: []byte{3}, Identity: []byte{4}}
	b, _ := k.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) {
		var k Keys
		if k.UnmarshalBinary(in) != nil {
			return
		}
		out, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(out, in) {
			t.Fatal("non-canonical key set accepted")
		}
	})
}

func FuzzVerify(f *testing.F) {
	dir, _ := os.MkdirTemp("", "attest-fuzz")
	f.Cleanup(func() { os.RemoveAll(dir) })
	// Deterministic platform key, so that every fuzzing worker makes the same
	// genuine document.
	b, _ := sim.Open(sim.Config{Dir: dir, Executable: os.Args[0], Rand: bytes.NewReader(bytes.Repeat([]byte{1}, 64))})
	keys := Keys{HPKEKEM: envelope.KEMX25519, HPKE: bytes.Repeat([]byte{9}, 32)}
	doc, _ := New(b, keys, fresh())
	f.Add(doc.Keys, doc.Quote)
	// Seeds for the hardware verifiers: genuine vendor evidence in a quote.
	for platform, file := range map[string]string{
		enclave.PlatformNitro: filepath.Join("nitro", "testdata", "cape-js-2022-09-15.cose"),
		enclave.PlatformTDX:   filepath.Join("tdx", "testdata", "go-tdx-guest-tdx_prod_quote_SPR_E4.dat"),
	} {
		ev, _ := os.ReadFile(file)
		q := enclave.Quote{Platform: platform, Evidence: ev}
		qb, _ := q.MarshalBinary()
		f.Add(doc.Keys, qb)
	}
	f.Fuzz(func(t *testing.T, kb, qb []byte) {
		_, err := Verify(&Document{Keys: kb, Quote: qb}, Policy{TrustOnFirstUse: true, AllowSimulated: true,
			SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}, MinKEM: envelope.KEMX25519})
		// Accepting anything but the genuine document would mean the fuzzer
		// forged an Ed25519 signature or broke the key binding.
		if err == nil && !(bytes.Equal(kb, doc.Keys) && bytes.Equal(qb, doc.Quote)) {
			t.Fatal("accepted a fuzzed document")
		}
	})
}

// forge plays an on-path attacker: a fresh sim platform key of its own, a
// quote claiming measurement m over its own keys.
func forge(t *testing.T, m enclave.Measurement, keys Keys) *Document {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := keys.MarshalBinary()
	f := fresh()
	fb, _ := f.MarshalBinary()
	q := enclave.Quote{Platform: enclave.PlatformSim, Simulated: true, Measurement: m, ReportData: ReportData(kb, fb)}
	sig := ed25519.Sign(priv, append([]byte("keymesh sim quote v1\x00"), q.SignedBytes()...))
	q.Evidence = append(bytes.Clone(priv.Public().(ed25519.PublicKey)), sig...)
	qb, _ := q.MarshalBinary()
	return &Document{Keys: kb, Fresh: fb, Quote: qb}
}

// TestForgedSimQuote: an attacker's quote, signed by a fresh platform key,
// claiming the pinned measurement and binding the attacker's HPKE key, is
// refused whatever else the policy says; the genuine one is accepted. Without
// a root nothing is accepted.
func TestForgedSimQuote(t *testing.T) {
	b := backend(t, t.TempDir(), "node v1")
	keys, _ := nodeKeys(t, b)
	genuine, _ := New(b, keys, fresh())
	mitm, _ := nodeKeys(t, backend(t, t.TempDir(), "attacker"))
	forged := forge(t, b.Measurement(), mitm)

	pinned := Policy{Measurements: []enclave.Measurement{b.Measurement()}, AllowSimulated: true,
		SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}}
	if _, err := Verify(genuine, pinned); err != nil {
		t.Fatalf("genuine document: %v", err)
	}
	tofu := pinned
	tofu.Measurements, tofu.TrustOnFirstUse = nil, true
	for name, p := range map[string]Policy{"pinned": pinned, "tofu": tofu} {
		if _, err := Verify(forged, p); !errors.Is(err, ErrQuote) || !errors.Is(err, sim.ErrUntrustedPlatform) {
			t.Errorf("%s: forged quote: %v", name, err)
		}
		p.SimPlatformKeys = nil
		if _, err := Verify(forged, p); !errors.Is(err, ErrNoRoot) {
			t.Errorf("%s, no root: forged quote: %v", name, err)
		}
		if _, err := Verify(genuine, p); !errors.Is(err, ErrNoRoot) {
			t.Errorf("%s, no root: genuine quote: %v", name, err)
		}
	}
	// The migration verifier applies the same rule.
	if err := QuoteVerifier(pinned)(mustQuote(t, forged)); !errors.Is(err, ErrQuote) {
		t.Fatalf("QuoteVerifier: forged quote: %v", err)
	}
}

func mustQuote(t *testing.T, d *Document) *enclave.Quote {
	t.Helper()
	var q enclave.Quote
	if err := q.UnmarshalBinary(d.Quote); err != nil {
		t.Fatal(err)
	}
	return &q
}

// TestMinKEM: a genuine document whose request key is X25519 is refused by
// a client that requires X-Wing (the default), so neither a document nor a
// node downgrades the KEM; a client that lowers its minimum accepts it.
func TestMinKEM(t *testing.T) {
	b := backend(t, t.TempDir(), "node")
	k, _, err := b.GenerateKey(enclave.KeyHPKEX25519, "hpke")
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := New(b, Keys{HPKEKEM: envelope.KEMX25519, HPKE: k.Public()}, fresh())
	p := Policy{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}}
	for _, min := range []uint16{0, envelope.KEMXWing} {
		p.MinKEM = min
		if _, err := Verify(doc, p); !errors.Is(err, ErrWeakKEM) {
			t.Fatalf("MinKEM %#04x: X25519 document: %v", min, err)
		}
	}
	p.MinKEM = envelope.KEMX25519
	if res, err := Verify(doc, p); err != nil || res.Keys.HPKEKEM != envelope.KEMX25519 {
		t.Fatalf("MinKEM X25519: %v", err)
	}
	xw, _ := nodeKeys(t, b)
	xdoc, _ := New(b, xw, fresh())
	if _, err := Verify(xdoc, p); err != nil {
		t.Fatalf("X-Wing document with MinKEM X25519: %v", err)
	}
	p.MinKEM = 0x0010
	if _, err := Verify(xdoc, p); err == nil {
		t.Fatal("a policy naming an unknown KEM accepted a document")
	}
}

// TestFreshness plays an attacker who recorded a node's genuine attestation
// and replays it: past its expiry, or to a client that sent its own
// challenge, it is refused; a document made for the client's challenge
// within its validity is accepted. Changing the times or the challenge
// breaks the quote's binding.
func TestFreshness(t *testing.T) {
	b := backend(t, t.TempDir(), "node v1")
	keys, _ := nodeKeys(t, b)
	t0 := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	challenge := bytes.Repeat([]byte{7}, 32)
	doc, err := New(b, keys, Freshness{Issued: t0, Expires: t0.Add(DefaultValidity), Challenge: challenge})
	if err != nil {
		t.Fatal(err)
	}
	p := Policy{Measurements: []enclave.Measurement{b.Measurement()}, AllowSimulated: true,
		SimPlatformKeys: []ed25519.PublicKey{b.PlatformKey()}, Challenge: challenge, Now: t0.Add(time.Minute)}
	res, err := Verify(doc, p)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fresh.Issued.Equal(t0) || !res.Fresh.Expires.Equal(t0.Add(DefaultValidity)) || !bytes.Equal(res.Fresh.Challenge, challenge) {
		t.Fatalf("freshness %+v", res.Fresh)
	}
	cases := []struct {
		name string
		edit func(p *Policy)
		want error
	}{
		{"replayed past its expiry", func(p *Policy) { p.Now = t0.Add(DefaultValidity) }, ErrStale},
		{"replayed to a client with another challenge", func(p *Policy) { p.Challenge = bytes.Repeat([]byte{8}, 32) }, ErrChallenge},
		{"older than the client's MaxAge", func(p *Policy) { p.MaxAge = 30 * time.Second }, ErrStale},
		{"issued in the client's future", func(p *Policy) { p.Now = t0.Add(-DefaultMaxSkew - time.Second) }, ErrStale},
		{"from another node", func(p *Policy) { p.NodeIdentity = make(ed25519.PublicKey, 32) }, ErrWrongNode},
	}
	for _, c := range cases {
		q := p
		c.edit(&q)
		if _, err := Verify(doc, q); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	p.NodeIdentity = keys.Identity
	if _, err := Verify(doc, p); err != nil {
		t.Fatalf("expected identity: %v", err)
	}
	// An attacker who rewrites the freshness (a later expiry, the victim's
	// challenge) breaks the binding.
	for _, f := range []Freshness{
		{Issued: t0, Expires: t0.Add(24 * time.Hour), Challenge: challenge},
		{Issued: t0, Expires: t0.Add(DefaultValidity), Challenge: bytes.Repeat([]byte{8}, 32)},
	} {
		edited := *doc
		edited.Fresh, _ = f.MarshalBinary()
		q := p
		q.Challenge = f.Challenge
		if _, err := Verify(&edited, q); !errors.Is(err, ErrKeysNotBound) {
			t.Fatalf("edited freshness: %v", err)
		}
	}
	if _, err := Verify(&Document{Keys: doc.Keys, Quote: doc.Quote}, p); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no freshness: %v", err)
	}
}

func FuzzFreshness(f *testing.F) {
	good, _ := (&Freshness{Issued: time.UnixMilli(1), Expires: time.UnixMilli(2), Challenge: []byte("c")}).MarshalBinary()
	f.Add(good)
	f.Add([]byte(freshMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fr Freshness
		if fr.UnmarshalBinary(data) != nil {
			return
		}
		again, err := fr.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip: %x -> %x (%v)", data, again, err)
		}
	})
}
