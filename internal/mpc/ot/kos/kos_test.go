package kos

import (
	"bytes"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

func testRand(t testing.TB) *mrand.ChaCha8 {
	var seed [32]byte
	copy(seed[:], t.Name())
	return mrand.NewChaCha8(seed)
}

func setup(t testing.TB, r *mrand.ChaCha8) (*SenderSetup, *ReceiverSetup) {
	t.Helper()
	st, m1, err := NewReceiverSetup([]byte("setup sid"), r)
	if err != nil {
		t.Fatal(err)
	}
	ss, m2, err := NewSenderSetup([]byte("setup sid"), m1, r)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := st.Finish(m2)
	if err != nil {
		t.Fatal(err)
	}
	return ss, rs
}

func randomChoices(m int, r *mrand.ChaCha8) []byte {
	c := make([]byte, m)
	for i := range c {
		c[i] = byte(r.Uint64() & 1)
	}
	return c
}

// checkOT asserts that the receiver's pad of every OT is the sender's pad
// for the chosen bit and differs from the other one.
func checkOT(t *testing.T, so *SenderOutput, ro *ReceiverOutput, choices []byte) {
	t.Helper()
	if so.Len() != len(choices) || ro.Len() != len(choices) {
		t.Fatalf("lengths %d, %d, want %d", so.Len(), ro.Len(), len(choices))
	}
	v0, v1, vr := make([]byte, 64), make([]byte, 64), make([]byte, 64)
	for j, c := range choices {
		so.Pads(j, v0, v1)
		ro.Pad(j, vr)
		want, other := v0, v1
		if c == 1 {
			want, other = v1, v0
		}
		if !bytes.Equal(vr, want) || bytes.Equal(vr, other) {
			t.Fatalf("OT %d: receiver pad is not the chosen sender pad", j)
		}
	}
}

func TestExtendCorrect(t *testing.T) {
	r := testRand(t)
	ss, rs := setup(t, r)
	for _, m := range []int{1, 7, 8, 63, 64, 65, 416, 1000} {
		ch := randomChoices(m, r)
		ro, msg, err := rs.Extend([]byte("sid"), ch, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) != MsgLen(m) {
			t.Fatalf("message length %d, want %d", len(msg), MsgLen(m))
		}
		so, err := ss.Extend([]byte("sid"), m, msg)
		if err != nil {
			t.Fatalf("m=%d: %v", m, err)
		}
		checkOT(t, so, ro, ch)
	}
}

// TestPadsBoundToSession: the same setup under two sids gives unrelated
// pads.
func TestPadsBoundToSession(t *testing.T) {
	r := testRand(t)
	ss, rs := setup(t, r)
	ch := []byte{1, 0, 1}
	_, m1, _ := rs.Extend([]byte("sid 1"), ch, r)
	_, m2, _ := rs.Extend([]byte("sid 2"), ch, r)
	s1, err1 := ss.Extend([]byte("sid 1"), 3, m1)
	s2, err2 := ss.Extend([]byte("sid 2"), 3, m2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	a0, a1, b0, b1 := make([]byte, 32), make([]byte, 32), make([]byte, 32), make([]byte, 32)
	s1.Pads(0, a0, a1)
	s2.Pads(0, b0, b1)
	if bytes.Equal(a0, b0) || bytes.Equal(a1, b1) || bytes.Equal(a0, b1) || bytes.Equal(a1, b0) {
		t.Fatal("pads repeat across sessions")
	}
}

// TestCheckBoundToSession: a receiver message made for one sid fails the
// check under another (the replay is caught, not silently accepted).
func TestCheckBoundToSession(t *testing.T) {
	r := testRand(t)
	ss, rs := setup(t, r)
	_, msg, _ := rs.Extend([]byte("sid 1"), randomChoices(416, r), r)
	if _, err := ss.Extend([]byte("sid 2"), 416, msg); !errors.Is(err, ErrCheck) {
		t.Fatalf("message replayed under another sid: %v", err)
	}
}

// TestTamperedMessageCaught flips every bit of the receiver's message in
// turn (every bit of the check values x and t̃^i, every 251st bit of u to
// keep the test short), as a network attacker or a receiver that does not
// recompute its check would: χ is a hash of u, so every flip is caught.
func TestTamperedMessageCaught(t *testing.T) {
	r := testRand(t)
	ss, rs := setup(t, r)
	const m = 70
	_, msg, err := rs.Extend([]byte("sid"), randomChoices(m, r), r)
	if err != nil {
		t.Fatal(err)
	}
	uBits := 8 * (len(msg) - checkLen)
	for bit := 0; bit < len(msg)*8; bit++ {
		if bit < uBits && bit%251 != 0 {
			continue
		}
		bad := bytes.Clone(msg)
		bad[bit/8] ^= 1 << (bit % 8)
		if _, err := ss.Extend([]byte("sid"), m, bad); !errors.Is(err, ErrCheck) {
			t.Fatalf("flip of bit %d not caught: %v", bit, err)
		}
	}
	for _, bad := range [][]byte{msg[:len(msg)-1], append(bytes.Clone(msg), 0), nil} {
		if _, err := ss.Extend([]byte("sid"), m, bad); !errors.Is(err, ErrCheck) {
			t.Fatalf("length %d accepted", len(bad))
		}
	}
}

// TestCheatingReceiverCaught: a malicious receiver uses an inconsistent
// choice bit — row j's bit flipped in column i only, the selective-failure
// attack of "Don't overextend your OT" — and computes χ and its check
// values from the u it sends. KOS's check catches it exactly when Δ_i = 1;
// when Δ_i = 0 the flip changes nothing the sender computes, so the result
// must still be a correct OT. (Hence one failed check leaks one bit of Δ,
// and a peer must be refused after it.)
func TestCheatingReceiverCaught(t *testing.T) {
	r := testRand(t)
	ss, rs := setup(t, r)
	const m = 100
	caught, harmless := 0, 0
	for _, col := range []int{0, 1, 5, 63, 64, 100, 127} {
		for _, row := range []int{0, 17, m - 1, m + 3} { // m+3: a padding row
			ch := randomChoices(m, r)
			ro, msg, err := rs.extend([]byte("sid"), ch, r, func(u []byte, nw int) {
				bit := col*64*nw + row
				u[bit/8] ^= 1 << (bit % 8)
			})
			if err != nil {
				t.Fatal(err)
			}
			so, err := ss.Extend([]byte("sid"), m, msg)
			if (ss.delta[col/64]>>(col%64))&1 == 1 {
				if !errors.Is(err, ErrCheck) {
					t.Fatalf("inconsistent choice at column %d row %d with Δ_i = 1 not caught", col, row)
				}
				caught++
			} else {
				if err != nil {
					t.Fatalf("flip at column %d with Δ_i = 0 rejected: %v", col, err)
				}
				checkOT(t, so, ro, ch)
				harmless++
			}
		}
	}
	if caught == 0 || harmless == 0 {
		t.Fatalf("caught %d, harmless %d: pick other columns", caught, harmless)
	}
}

func TestSetupEncoding(t *testing.T) {
	r := testRand(t)
	ss, rs := setup(t, r)
	b, _ := ss.MarshalBinary()
	var ss2 SenderSetup
	if err := ss2.UnmarshalBinary(b); err != nil || !ss2.Equal(ss) {
		t.Fatal("sender setup round trip failed")
	}
	b, _ = rs.MarshalBinary()
	var rs2 ReceiverSetup
	if err := rs2.UnmarshalBinary(b); err != nil || !rs2.Equal(rs) {
		t.Fatal("receiver setup round trip failed")
	}
	if err := rs2.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Fatal("short receiver setup accepted")
	}
	same := bytes.Clone(b)
	copy(same[ReceiverSetupLen/2:], same[:SeedLen])
	if err := rs2.UnmarshalBinary(same); err == nil {
		t.Fatal("receiver setup with equal seeds accepted")
	}
	if err := ss2.UnmarshalBinary(append(b, 0)); err == nil {
		t.Fatal("wrong-length sender setup accepted")
	}
	// The decoded setups still work together.
	ch := randomChoices(10, r)
	ro, msg, _ := rs2.Extend([]byte("x"), ch, r)
	so, err := ss2.Extend([]byte("x"), 10, msg)
	if err != nil {
		t.Fatal(err)
	}
	checkOT(t, so, ro, ch)
}

func FuzzSenderExtend(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{5})
	ss, rs := setup(f, r)
	_, msg, _ := rs.Extend([]byte("sid"), []byte{1, 0, 1}, r)
	f.Add(msg)
	f.Add(make([]byte, MsgLen(3)))
	// Only the honest message passes: any other of the right length changes
	// χ, x or some t̃^i, and fails the check but with probability ~2^-128.
	f.Fuzz(func(t *testing.T, m []byte) {
		if _, err := ss.Extend([]byte("sid"), 3, m); err == nil && !bytes.Equal(m, msg) {
			t.Fatal("accepted a message other than the honest one")
		}
	})
}

func FuzzSetupUnmarshal(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{6})
	ss, rs := setup(f, r)
	b1, _ := ss.MarshalBinary()
	b2, _ := rs.MarshalBinary()
	f.Add(b1)
	f.Add(b2)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s SenderSetup
		if s.UnmarshalBinary(b) == nil {
			if out, _ := s.MarshalBinary(); !bytes.Equal(out, b) {
				t.Fatal("sender setup not canonical")
			}
		}
		var rr ReceiverSetup
		if rr.UnmarshalBinary(b) == nil {
			if out, _ := rr.MarshalBinary(); !bytes.Equal(out, b) {
				t.Fatal("receiver setup not canonical")
			}
		}
	})
}

func BenchmarkExtend416(b *testing.B) {
	r := mrand.NewChaCha8([32]byte{7})
	ss, rs := setup(b, r)
	ch := randomChoices(416, r)
	for b.Loop() {
		_, msg, _ := rs.Extend([]byte("sid"), ch, r)
		if _, err := ss.Extend([]byte("sid"), 416, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(MsgLen(416)), "msg-bytes")
}
