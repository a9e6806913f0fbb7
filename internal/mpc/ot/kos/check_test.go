package kos

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"os"
	"strings"
	"testing"
)

// naiveGFReduce reduces a 256-bit polynomial modulo X^128 + X^7 + X^2 + X
// + 1 bit by bit, from the top.
func naiveGFReduce(p [4]uint64) [2]uint64 {
	for k := 255; k >= 128; k-- {
		if (p[k/64]>>(k%64))&1 == 0 {
			continue
		}
		for _, e := range []int{128, 7, 2, 1, 0} { // X^k = X^(k-128)·P + …
			b := k - 128 + e
			p[b/64] ^= 1 << (b % 64)
		}
	}
	return [2]uint64{p[0], p[1]}
}

func TestGFReduce(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{11})
	cases := [][4]uint64{
		{0, 0, 0, 0},
		{0, 0, 1, 0},
		{0, 0, 0, 1 << 63},
		{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)},
		{0, 0, 0, 0xFE00000000000000},
	}
	for range 1000 {
		cases = append(cases, [4]uint64{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()})
	}
	for _, c := range cases {
		if got, want := gfReduce(&c), naiveGFReduce(c); got != want {
			t.Fatalf("gfReduce(%x) = %x, want %x", c, got, want)
		}
	}
	// Reduced products commute and distribute over XOR.
	for range 200 {
		a := [2]uint64{r.Uint64(), r.Uint64()}
		b := [2]uint64{r.Uint64(), r.Uint64()}
		c := [2]uint64{r.Uint64(), r.Uint64()}
		ab, ba := clmul128(&a, &b), clmul128(&b, &a)
		if gfReduce(&ab) != gfReduce(&ba) {
			t.Fatal("multiplication not commutative")
		}
		bc := [2]uint64{b[0] ^ c[0], b[1] ^ c[1]}
		abc, ac := clmul128(&a, &bc), clmul128(&a, &c)
		l, r1, r2 := gfReduce(&abc), gfReduce(&ab), gfReduce(&ac)
		if l != [2]uint64{r1[0] ^ r2[0], r1[1] ^ r2[1]} {
			t.Fatal("multiplication does not distribute")
		}
	}
}

// fakeSetup returns a fresh pair of setups as the base OTs would leave them
// (random seeds k_i^0, k_i^1, random Δ, the sender holding k_i^{Δ_i}),
// without the cost of 128 base OTs over secp256k1.
func fakeSetup(r *mrand.ChaCha8) (*SenderSetup, *ReceiverSetup) {
	ss := &SenderSetup{cache: new(senderCache)}
	rs := &ReceiverSetup{cache: new(receiverCache)}
	for ss.delta[0]|ss.delta[1] == 0 {
		ss.delta = [2]uint64{r.Uint64(), r.Uint64()}
	}
	for h := range 2 {
		for i := range Kappa {
			r.Read(rs.seeds[h][i][:])
		}
	}
	for i := range Kappa {
		ss.seeds[i] = rs.seeds[(ss.delta[i/64]>>(i%64))&1][i]
	}
	return ss, rs
}

func deltaBit(ss *SenderSetup, i int) uint64 { return (ss.delta[i/64] >> (i % 64)) & 1 }

// TestSelectiveFailureRate: the selective-failure probe of "Don't
// overextend your OT" — a receiver flips one bit of one column of u and
// otherwise behaves honestly — over fresh setups. Each trial is caught
// exactly when Δ_i = 1 (asserted per trial), so the caught fraction over N
// trials is Binomial(N, 1/2). The interval asserted is N/2 ± 55 for N =
// 400; by Hoeffding's inequality an honest implementation falls outside it
// with probability at most 2·exp(−2·55²/400) ≈ 5.4e-7. The randomness is a
// fixed ChaCha8 stream, so the test is deterministic; the bound says how
// unlikely a failure would be for any other seed.
func TestSelectiveFailureRate(t *testing.T) {
	const (
		trials = 400
		slack  = 55
		m      = 100
	)
	r := mrand.NewChaCha8([32]byte{'p', 'r', 'o', 'b', 'e'})
	caught := 0
	for trial := range trials {
		ss, rs := fakeSetup(r)
		col := int(r.Uint64() % Kappa)
		mp, _ := paddedLen(m)
		row := int(r.Uint64() % uint64(mp)) // any row: caller's, padding or mask
		ch := randomChoices(m, r)
		ro, msg, err := rs.extend([]byte("probe"), ch, r, func(u []byte, nw int) {
			bit := col*64*nw + row
			u[bit/8] ^= 1 << (bit % 8)
		})
		if err != nil {
			t.Fatal(err)
		}
		so, err := ss.Extend([]byte("probe"), m, msg)
		switch {
		case deltaBit(ss, col) == 1 && !errors.Is(err, ErrCheck):
			t.Fatalf("trial %d: flip at column %d row %d with Δ_i = 1 not caught", trial, col, row)
		case deltaBit(ss, col) == 0 && err != nil:
			t.Fatalf("trial %d: harmless flip (Δ_i = 0) rejected: %v", trial, err)
		case err != nil:
			caught++
		default:
			checkOT(t, so, ro, ch)
		}
	}
	if caught < trials/2-slack || caught > trials/2+slack {
		t.Fatalf("caught %d of %d probes, want %d ± %d", caught, trials, trials/2, slack)
	}
	t.Logf("caught %d of %d probes", caught, trials)
}

// TestInconsistentColumns plays the receivers that the corrected check is
// for: effective choice vectors that differ between columns (columns in a
// set C use r ⊕ e for a random nonzero e). Computing the check from the
// honest r, the receiver is caught unless Δ_i = 0 for every i in C.
// Adjusting t̃^i by R(e) for i in C — a guess that Δ_i = 1 there — it
// passes exactly when that guess is right: a pass reveals the guessed bits
// and nothing lets the deviation through unguessed.
func TestInconsistentColumns(t *testing.T) {
	const m = 300
	r := mrand.NewChaCha8([32]byte{'c', 'o', 'l', 's'})
	passHonestCheck, passGuess := 0, 0
	for trial := range 60 {
		ss, rs := fakeSetup(r)
		mp, nw := paddedLen(m)
		e := make([]uint64, nw)
		for e[0]|e[1] == 0 { // nonzero in a weighted block
			for w := range e {
				e[w] = r.Uint64()
			}
		}
		set := map[int]bool{}
		for range 1 + trial%3 {
			set[int(r.Uint64()%Kappa)] = true
		}
		allZero, allOne := true, true
		for i := range set {
			allZero = allZero && deltaBit(ss, i) == 0
			allOne = allOne && deltaBit(ss, i) == 1
		}
		sid := []byte("cols")
		ch := randomChoices(m, r)
		_, msg, err := rs.extend(sid, ch, r, func(u []byte, nw int) {
			for i := range set {
				for w := range nw {
					for k := range 8 {
						u[8*(i*nw+w)+k] ^= byte(e[w] >> (8 * k))
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ss.Extend(sid, m, msg)
		if allZero != (err == nil) {
			t.Fatalf("trial %d: check result %v with Δ_C all zero = %v", trial, err, allZero)
		}
		if err == nil {
			passHonestCheck++
		}

		// The guessing receiver: t̃^i ⊕= R(e) for i in C.
		re := checkSum(e, chi(sid, msg[:Kappa*mp/8], mp/Sigma-1))
		off := Kappa*mp/8 + 16
		for i := range set {
			for k := range 8 {
				msg[off+16*i+k] ^= byte(re[0] >> (8 * k))
				msg[off+16*i+8+k] ^= byte(re[1] >> (8 * k))
			}
		}
		_, err = ss.Extend(sid, m, msg)
		if allOne != (err == nil) {
			t.Fatalf("trial %d: guessing receiver: check result %v with Δ_C all one = %v", trial, err, allOne)
		}
		if err == nil {
			passGuess++
		}
	}
	if passHonestCheck == 0 || passGuess == 0 {
		t.Fatalf("no passing trial (%d, %d): pick another seed", passHonestCheck, passGuess)
	}
}

func TestOutputWipe(t *testing.T) {
	r := testRand(t)
	ss, rs := fakeSetup(r)
	ch := randomChoices(20, r)
	ro, msg, err := rs.Extend([]byte("w"), ch, r)
	if err != nil {
		t.Fatal(err)
	}
	so, err := ss.Extend([]byte("w"), 20, msg)
	if err != nil {
		t.Fatal(err)
	}
	rows, qrows := ro.rows, so.rows
	ro.Wipe()
	so.Wipe()
	if ro.Len() != 0 || so.Len() != 0 || so.delta != nil {
		t.Fatal("outputs still usable after Wipe")
	}
	for j := range rows {
		if rows[j] != [2]uint64{} || qrows[j] != [2]uint64{} {
			t.Fatalf("row %d not zeroed", j)
		}
	}
	// The sender's output refers to the setup's Δ; a zeroed setup is refused
	// loudly rather than giving equal pads.
	_, msg, err = rs.Extend([]byte("w2"), ch, r)
	if err != nil {
		t.Fatal(err)
	}
	if so, err = ss.Extend([]byte("w2"), 20, msg); err != nil {
		t.Fatal(err)
	}
	*ss = SenderSetup{}
	defer func() {
		if recover() == nil {
			t.Fatal("Pads after the setup was zeroed did not panic")
		}
	}()
	so.Pads(0, make([]byte, 16), make([]byte, 16))
}

// TestExtendKnownAnswer pins the extension message and the pads for fixed
// setups and randomness (testdata/extend_digest.txt): the wire format, the
// check (Fig. 10 over GF(2^128)) and the hash domains. A change must be
// deliberate: regenerate with KEYMESH_REGENERATE_GOLDEN=1.
func TestExtendKnownAnswer(t *testing.T) {
	r := mrand.NewChaCha8([32]byte{'k', 'o', 's', ' ', 'k', 'a', 't'})
	ss, rs := fakeSetup(r)
	h := sha256.New()
	for _, m := range []int{1, 128, 129, 416} {
		ch := randomChoices(m, r)
		ro, msg, err := rs.Extend([]byte("kat"), ch, r)
		if err != nil {
			t.Fatal(err)
		}
		so, err := ss.Extend([]byte("kat"), m, msg)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(msg)
		v0, v1, vr := make([]byte, 32), make([]byte, 32), make([]byte, 32)
		for j := range m {
			so.Pads(j, v0, v1)
			ro.Pad(j, vr)
			h.Write(v0)
			h.Write(v1)
			h.Write(vr)
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	const file = "testdata/extend_digest.txt"
	if os.Getenv("KEYMESH_REGENERATE_GOLDEN") == "1" {
		if err := os.WriteFile(file, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Fatalf("extension digest %s, want %s", got, want)
	}
}
