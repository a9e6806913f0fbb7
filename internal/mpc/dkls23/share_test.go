package dkls23_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

var (
	sharesOnce sync.Once
	shares     []*dkls23.Share
	sharesErr  error
)

// testShares returns one 2-of-3 key, generated once per test binary.
func testShares(t testing.TB) []*dkls23.Share {
	t.Helper()
	sharesOnce.Do(func() { shares, sharesErr = dkls23test.Keygen(2, 3, 42) })
	if sharesErr != nil {
		t.Fatal(sharesErr)
	}
	return shares
}

func TestShareRoundTrip(t *testing.T) {
	for _, s := range testShares(t) {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got dkls23.Share
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		b2, err := got.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, b2) {
			t.Fatal("re-encoding differs")
		}
		if !got.SecretShare().Equals(s.SecretShare()) || !dkls23.EqualPoints(got.PublicKey(), s.PublicKey()) ||
			got.Self() != s.Self() || got.Threshold() != s.Threshold() || got.Generation() != s.Generation() {
			t.Fatal("decoded share differs")
		}
		for _, p := range s.Parties() {
			if p == s.Self() {
				continue
			}
			a, b := s.Peer(p), got.Peer(p)
			if !a.Equal(b) {
				t.Fatalf("pairwise state for %v differs", p)
			}
		}
	}
}

// layout offsets of the version-1 encoding of a 2-of-3 share.
const (
	offVersion = 4
	offT       = 5
	offN       = 6
	offSelf    = 7
	offParties = 9 + 32
	offPK      = offParties + 3*2
	offShares  = offPK + 33
	offSecret  = offShares + 3*33
	offPeers   = offSecret + 32
)

func TestShareDecodeIsStrict(t *testing.T) {
	s := testShares(t)[0]
	good, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	q := secp256k1.Params().N.Bytes()
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	set := func(off int, v []byte) []byte {
		return edit(func(b []byte) []byte { copy(b[off:], v); return b })
	}
	notOnCurve := append([]byte{2}, bytes.Repeat([]byte{0}, 31)...)
	notOnCurve = append(notOnCurve, 5) // x = 5: 125+7 = 132 is not a square mod p
	cases := map[string][]byte{
		"empty":                  nil,
		"trailing byte":          append(bytes.Clone(good), 0),
		"truncated":              good[:len(good)-1],
		"bad magic":              set(0, []byte("KMDX")),
		"version 2":              set(offVersion, []byte{2}),
		"threshold 1":            set(offT, []byte{1}),
		"threshold above n":      set(offT, []byte{4}),
		"n of 17":                set(offN, []byte{17}),
		"self not a party":       set(offSelf, []byte{0, 9}),
		"party zero":             set(offParties, []byte{0, 0}),
		"parties unsorted":       set(offParties, []byte{0, 2, 0, 1}),
		"duplicate party":        set(offParties, []byte{0, 2, 0, 2}),
		"public key identity":    set(offPK, make([]byte, 33)),
		"public key off curve":   set(offPK, notOnCurve),
		"public key x ≥ p":       set(offPK, append([]byte{2}, bytes.Repeat([]byte{0xff}, 32)...)),
		"public key prefix 4":    set(offPK, []byte{4}),
		"other public key":       set(offPK, curve.EncodePoint(generator())),
		"public share identity":  set(offShares+33, make([]byte, 33)),
		"public share off curve": set(offShares, notOnCurve),
		"swapped public shares": edit(func(b []byte) []byte {
			copy(b[offShares:], good[offShares+33:offShares+66])
			copy(b[offShares+33:], good[offShares:offShares+33])
			return b
		}),
		"zero secret":             set(offSecret, make([]byte, 32)),
		"secret = q":              set(offSecret, q),
		"secret ≥ q":              set(offSecret, bytes.Repeat([]byte{0xff}, 32)),
		"other secret":            set(offSecret+31, []byte{good[offSecret+31] ^ 1}),
		"setup length too long":   set(offPeers+32, []byte{0xff, 0xff, 0xff, 0xff}),
		"refused non-peer":        append(bytes.Clone(good[:len(good)-1]), 1, 0, 9),
		"refused self":            append(bytes.Clone(good[:len(good)-1]), 1, 0, 1),
		"refused unsorted":        append(bytes.Clone(good[:len(good)-1]), 2, 0, 3, 0, 2),
		"refused count too big":   append(bytes.Clone(good[:len(good)-1]), 2, 0, 3),
		"setup length off by one": edit(func(b []byte) []byte { b[offPeers+35]++; return b }),
	}
	for name, b := range cases {
		var got dkls23.Share
		err := got.UnmarshalBinary(b)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !errors.Is(err, dkls23.ErrInvalidShare) {
			t.Errorf("%s: error %v does not wrap ErrInvalidShare", name, err)
		}
		if got.Parties() != nil {
			t.Errorf("%s: share changed on error", name)
		}
	}
}

// A share never prints its secret share or its seeds, whatever the verb.
func TestShareNeverPrintsSecrets(t *testing.T) {
	s := testShares(t)[0]
	x := s.SecretShare().Bytes()
	var secrets []string
	secrets = append(secrets, hex.EncodeToString(x[:]), fmt.Sprint(x[:]))
	for _, p := range s.Parties() {
		if p != s.Self() {
			seed := s.Peer(p).Seed()
			secrets = append(secrets, hex.EncodeToString(seed[:]), fmt.Sprint(seed[:]))
		}
	}
	var x0 secp256k1.ModNScalar
	x0.Set(s.SecretShare())
	// The secret's internal limbs, as fmt would print them by reflection.
	for _, w := range strings.Fields(strings.Trim(fmt.Sprint(reflect.ValueOf(x0).Field(0)), "[]")) {
		if len(w) >= 6 {
			secrets = append(secrets, w)
		}
	}
	type wrapper struct{ S *dkls23.Share }
	type valueWrapper struct{ S dkls23.Share }
	for _, out := range []string{
		fmt.Sprintf("%v %+v %#v %s %x %X %q %d", s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v %x", *s, *s, wrapper{s}, *s),
		fmt.Sprintf("%v %+v %#v", valueWrapper{*s}, []dkls23.Share{*s}, map[int]dkls23.Share{1: *s}),
		fmt.Sprintf("%v %+v", *s.Peer(2), []dkls23.Peer{*s.Peer(2)}),
		fmt.Sprintf("%v %+v %#v %x", s.Peer(2), s.Peer(2), s.Peer(2), s.Peer(2)),
		fmt.Sprint(s),
	} {
		for _, sec := range secrets {
			if strings.Contains(strings.ToLower(out), sec) {
				t.Fatalf("secret printed: %s", out)
			}
		}
		if strings.Contains(out, fmt.Sprint(x0)) {
			t.Fatalf("secret scalar printed: %s", out)
		}
	}
	if !strings.Contains(fmt.Sprint(s), hex.EncodeToString(s.PublicKeyBytes())) {
		t.Fatal("public key not printed")
	}
}

func TestLagrangeInterpolates(t *testing.T) {
	// f(x) = 7 + 3x + 5x² over parties {2, 5, 9}: Σ λ_i f(i) = 7.
	f := func(x uint32) secp256k1.ModNScalar {
		var v secp256k1.ModNScalar
		v.SetInt(7 + 3*x + 5*x*x)
		return v
	}
	ps := []round.PartyID{9, 2, 5}
	var sum secp256k1.ModNScalar
	for _, p := range ps {
		l, err := dkls23.Lagrange(ps, p)
		if err != nil {
			t.Fatal(err)
		}
		fx := f(uint32(p))
		sum.Add(l.Mul(&fx))
	}
	var seven secp256k1.ModNScalar
	seven.SetInt(7)
	if !sum.Equals(&seven) {
		t.Fatal("Σ λ_i f(i) ≠ f(0)")
	}
	for _, bad := range [][]round.PartyID{{1, 1, 2}, {0, 1}, {2, 3}} {
		if _, err := dkls23.Lagrange(bad, 1); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

func TestSplitFieldsIsStrict(t *testing.T) {
	b := dkls23.AppendField(dkls23.AppendField(nil, []byte("ab")), []byte("c"))
	f, err := dkls23.SplitFields(b, 2)
	if err != nil || string(f[0]) != "ab" || string(f[1]) != "c" {
		t.Fatalf("%q %v", f, err)
	}
	// ("ab","c") and ("a","bc") encode differently.
	if bytes.Equal(b, dkls23.AppendField(dkls23.AppendField(nil, []byte("a")), []byte("bc"))) {
		t.Fatal("ambiguous encoding")
	}
	for name, in := range map[string][]byte{
		"trailing":  append(bytes.Clone(b), 0),
		"truncated": b[:len(b)-1],
		"one field": dkls23.AppendField(nil, []byte("ab")),
		"huge":      {0xff, 0xff, 0xff, 0xff},
	} {
		if _, err := dkls23.SplitFields(in, 2); !errors.Is(err, dkls23.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzShareUnmarshal's seeds are real 2-of-3 share records in
// testdata/fuzz/FuzzShareUnmarshal (written by TestWriteShareCorpus): a live
// key generation per fuzz worker would be too slow under the fuzzer's
// instrumentation.
func FuzzShareUnmarshal(f *testing.F) {
	f.Add([]byte("KMDS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s dkls23.Share
		if err := s.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, dkls23.ErrInvalidShare) {
				t.Fatalf("error %v does not wrap ErrInvalidShare", err)
			}
			return
		}
		// Canonical: what decodes re-encodes to the same bytes.
		out, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("decoded share re-encodes differently")
		}
	})
}

func FuzzSplitFields(f *testing.F) {
	f.Add(dkls23.AppendField(dkls23.AppendField(nil, []byte("ab")), []byte("c")), uint8(2))
	f.Add([]byte{0, 0, 0, 0}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, n uint8) {
		fields, err := dkls23.SplitFields(b, int(n%8))
		if err != nil {
			return
		}
		var again []byte
		for _, x := range fields {
			again = dkls23.AppendField(again, x)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("not canonical")
		}
	})
}

func FuzzParseEthereum(f *testing.F) {
	f.Add(make([]byte, 65))
	f.Add(bytes.Repeat([]byte{1}, 65))
	f.Fuzz(func(t *testing.T, b []byte) {
		sig, err := dkls23.ParseEthereum(b)
		if err != nil {
			return
		}
		if !bytes.Equal(sig.Ethereum(), b) {
			t.Fatal("not canonical")
		}
	})
}

func generator() *secp256k1.JacobianPoint {
	var one secp256k1.ModNScalar
	one.SetInt(1)
	var g secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(&one, &g)
	g.ToAffine()
	return &g
}

// TestWriteShareCorpus rewrites the seed corpus of FuzzShareUnmarshal when
// KEYMESH_WRITE_FUZZ_CORPUS=1 (after a change to the share encoding).
func TestWriteShareCorpus(t *testing.T) {
	if os.Getenv("KEYMESH_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set KEYMESH_WRITE_FUZZ_CORPUS=1 to rewrite the corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzShareUnmarshal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range testShares(t) {
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		name := filepath.Join(dir, fmt.Sprintf("share-2-of-3-party-%d", s.Self()))
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
