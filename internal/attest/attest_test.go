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
	doc, err := New(b, keys)
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
	doc, _ := New(b, keys)
	other := backend(t, dir, "node v2").Measurement()

	// Pinned to another build: refused, and the error names both.
	_, err := Verify(doc, Policy{Measurements: []enclave.Measurement{other}, AllowSimulated: true})
	var me *MeasurementError
	if !errors.As(err, &me) || me.Got != b.Measurement() {
		t.Fatalf("pinned mismatch: %v", err)
	}
	if !strings.Contains(err.Error(), b.Measurement().String()) || !strings.Contains(err.Error(), other.String()) {
		t.Fatalf("error does not say which: %v", err)
	}
	// Trust on first use: accepted with a warning naming the measurement.
	res, err := Verify(doc, Policy{TrustOnFirstUse: true, AllowSimulated: true})
	if err != nil || !res.FirstUse || !strings.Contains(strings.Join(res.Warnings, "\n"), b.Measurement().String()) {
		t.Fatalf("TOFU: %+v %v", res, err)
	}
	if _, err := Verify(doc, Policy{AllowSimulated: true}); !errors.Is(err, ErrNoPin) {
		t.Fatalf("no pin: %v", err)
	}
	if _, err := Verify(doc, Policy{Measurements: []enclave.Measurement{b.Measurement()}}); !errors.Is(err, ErrSimulated) {
		t.Fatalf("simulated not allowed: %v", err)
	}
	stranger := backend(t, t.TempDir(), "x").PlatformKey()
	if _, err := Verify(doc, Policy{TrustOnFirstUse: true, AllowSimulated: true, SimPlatformKeys: []ed25519.PublicKey{stranger}}); !errors.Is(err, ErrQuote) {
		t.Fatalf("unpinned platform key: %v", err)
	}
}

func TestBinding(t *testing.T) {
	b := backend(t, t.TempDir(), "node")
	keys, _ := nodeKeys(t, b)
	doc, _ := New(b, keys)
	p := Policy{TrustOnFirstUse: true, AllowSimulated: true}

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
	q.ReportData = ReportData(swapped.Keys)
	forged := swapped
	forged.Quote, _ = q.MarshalBinary()
	if _, err := Verify(&forged, p); !errors.Is(err, ErrQuote) {
		t.Fatalf("forged quote: %v", err)
	}
	// A platform without a verifier yet.
	q.UnmarshalBinary(doc.Quote)
	q.Platform, q.Simulated = enclave.PlatformSEVSNP, false
	snp := *doc
	snp.Quote, _ = q.MarshalBinary()
	if _, err := Verify(&snp, p); !errors.Is(err, ErrUnsupportedPlatform) {
		t.Fatalf("sev-snp: %v", err)
	}
	if _, err := Verify(&Document{Keys: doc.Keys, Quote: doc.Quote[:10]}, p); !errors.Is(err, ErrMalformed) {
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
	doc, _ := New(b, keys)
	res, err := Verify(doc, Policy{TrustOnFirstUse: true, AllowSimulated: true})
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
	doc, _ := New(b, keys)
	f.Add(doc.Keys, doc.Quote)
	f.Fuzz(func(t *testing.T, kb, qb []byte) {
		_, err := Verify(&Document{Keys: kb, Quote: qb}, Policy{TrustOnFirstUse: true, AllowSimulated: true})
		// Accepting anything but the genuine document would mean the fuzzer
		// forged an Ed25519 signature or broke the key binding.
		if err == nil && !(bytes.Equal(kb, doc.Keys) && bytes.Equal(qb, doc.Quote)) {
			t.Fatal("accepted a fuzzed document")
		}
	})
}
