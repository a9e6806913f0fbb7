package baseot

import (
	"bytes"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/curve"
)

func testRand(t testing.TB) *mrand.ChaCha8 {
	var seed [32]byte
	copy(seed[:], t.Name())
	return mrand.NewChaCha8(seed)
}

func choicesFor(n int, r *mrand.ChaCha8) []byte {
	c := make([]byte, n)
	for i := range c {
		c[i] = byte(r.Uint64() & 1)
	}
	return c
}

func run(t *testing.T, sid []byte, n int) (*SenderOutput, *ReceiverOutput, []byte) {
	t.Helper()
	r := testRand(t)
	s, m1, err := NewSender(sid, n, r)
	if err != nil {
		t.Fatal(err)
	}
	ch := choicesFor(n, r)
	ro, m2, err := Receive(sid, ch, m1, r)
	if err != nil {
		t.Fatal(err)
	}
	so, err := s.Finish(m2)
	if err != nil {
		t.Fatal(err)
	}
	return so, ro, ch
}

func TestCorrectness(t *testing.T) {
	so, ro, ch := run(t, []byte("sid"), 64)
	for i, c := range ch {
		k0, k1 := so.Keys(i)
		chosen, other := k0, k1
		if c == 1 {
			chosen, other = k1, k0
		}
		if *ro.Key(i) != *chosen {
			t.Fatalf("OT %d: receiver key is not the chosen sender key", i)
		}
		if *ro.Key(i) == *other {
			t.Fatalf("OT %d: receiver got the other key", i)
		}
		if *k0 == *k1 {
			t.Fatalf("OT %d: the two outputs are equal", i)
		}
	}
	// Keys of different instances differ.
	seen := map[Key]bool{}
	for i := range ch {
		k0, k1 := so.Keys(i)
		if seen[*k0] || seen[*k1] {
			t.Fatal("a key repeats across instances")
		}
		seen[*k0], seen[*k1] = true, true
	}
}

func TestOneShot(t *testing.T) {
	r := testRand(t)
	s, m1, _ := NewSender([]byte("sid"), 2, r)
	_, m2, err := Receive([]byte("sid"), []byte{0, 1}, m1, r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(m2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(m2); err == nil {
		t.Fatal("second Finish succeeded")
	}
}

// TestSessionBinding: the proof does not verify under another sid, so a
// sender message cannot be replayed into another session.
func TestSessionBinding(t *testing.T) {
	r := testRand(t)
	_, m1, _ := NewSender([]byte("session A"), 4, r)
	if _, _, err := Receive([]byte("session B"), []byte{0, 1, 0, 1}, m1, r); !errors.Is(err, ErrCheat) {
		t.Fatalf("proof from another session accepted: %v", err)
	}
}

// TestIndexBinding: the same A_i sent at two positions yields different
// keys, because the instance index is hashed in.
func TestIndexBinding(t *testing.T) {
	r := testRand(t)
	s, m1, _ := NewSender([]byte("sid"), 2, r)
	_, m2, _ := Receive([]byte("sid"), []byte{0, 0}, m1, r)
	copy(m2[curve.PointLen:], m2[:curve.PointLen]) // A_1 = A_0
	so, err := s.Finish(m2)
	if err != nil {
		t.Fatal(err)
	}
	a0, b0 := so.Keys(0)
	a1, b1 := so.Keys(1)
	if *a0 == *a1 || *b0 == *b1 {
		t.Fatal("keys not bound to the instance index")
	}
}

var (
	gEnc, _     = hex.DecodeString("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	offCurve, _ = hex.DecodeString("020000000000000000000000000000000000000000000000000000000000000005")
	xIsP, _     = hex.DecodeString("02fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f")
)

func badPoints() map[string][]byte {
	return map[string][]byte{
		"identity (zeros)": make([]byte, 33),
		"off curve":        offCurve,
		"x = p":            xIsP,
		"prefix 04":        append([]byte{0x04}, gEnc[1:]...),
	}
}

func TestReceiverRejectsBadSenderMessage(t *testing.T) {
	r := testRand(t)
	_, m1, _ := NewSender([]byte("sid"), 2, r)
	for name, bad := range badPoints() {
		for _, off := range []int{0, 33} { // B, then R
			m := bytes.Clone(m1)
			copy(m[off:], bad)
			if _, _, err := Receive([]byte("sid"), []byte{0, 1}, m, r); !errors.Is(err, ErrCheat) {
				t.Errorf("%s at %d: got %v", name, off, err)
			}
		}
	}
	// s >= n.
	m := bytes.Clone(m1)
	copy(m[66:], bytes.Repeat([]byte{0xff}, 32))
	if _, _, err := Receive([]byte("sid"), []byte{0, 1}, m, r); !errors.Is(err, ErrCheat) {
		t.Error("s >= n accepted")
	}
	// Every single-bit flip is rejected (proof or decoding).
	for bit := range len(m1) * 8 {
		m := bytes.Clone(m1)
		m[bit/8] ^= 1 << (bit % 8)
		if _, _, err := Receive([]byte("sid"), []byte{0, 1}, m, r); !errors.Is(err, ErrCheat) {
			t.Fatalf("flip of bit %d accepted: %v", bit, err)
		}
	}
	for _, m := range [][]byte{m1[:len(m1)-1], append(bytes.Clone(m1), 0), nil} {
		if _, _, err := Receive([]byte("sid"), []byte{0, 1}, m, r); !errors.Is(err, ErrCheat) {
			t.Errorf("length %d accepted", len(m))
		}
	}
}

func TestSenderRejectsBadReceiverMessage(t *testing.T) {
	r := testRand(t)
	fresh := func() (*Sender, []byte, []byte) {
		s, m1, _ := NewSender([]byte("sid"), 2, r)
		_, m2, err := Receive([]byte("sid"), []byte{1, 0}, m1, r)
		if err != nil {
			t.Fatal(err)
		}
		return s, m1, m2
	}
	for name, bad := range badPoints() {
		s, _, m2 := fresh()
		copy(m2[33:], bad)
		if _, err := s.Finish(m2); !errors.Is(err, ErrCheat) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// A_i = B would make b·(A_i − B) the identity.
	s, m1, m2 := fresh()
	copy(m2[33:], m1[:33])
	if _, err := s.Finish(m2); !errors.Is(err, ErrCheat) {
		t.Errorf("A = B accepted: %v", err)
	}
	s, _, m2 = fresh()
	if _, err := s.Finish(append(m2, 0)); !errors.Is(err, ErrCheat) {
		t.Error("trailing byte accepted")
	}
}

func TestBadChoice(t *testing.T) {
	r := testRand(t)
	_, m1, _ := NewSender([]byte("sid"), 2, r)
	if _, _, err := Receive([]byte("sid"), []byte{0, 2}, m1, r); err == nil {
		t.Fatal("choice 2 accepted")
	}
}

func FuzzReceive(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{1})
	_, m1, _ := NewSender([]byte("sid"), 1, r)
	f.Add(m1)
	f.Add(make([]byte, Msg1Len))
	f.Fuzz(func(t *testing.T, m []byte) {
		_, _, err := Receive([]byte("sid"), []byte{1}, m, r)
		if err == nil && !bytes.Equal(m, m1) {
			t.Fatal("accepted a message that is not the sender's")
		}
	})
}

func FuzzSenderFinish(f *testing.F) {
	r := mrand.NewChaCha8([32]byte{2})
	_, m1, _ := NewSender([]byte("sid"), 1, r)
	_, m2, _ := Receive([]byte("sid"), []byte{1}, m1, r)
	f.Add(m2)
	f.Add(make([]byte, Msg2Len(1)))
	f.Fuzz(func(t *testing.T, m []byte) {
		s, _, _ := NewSender([]byte("sid"), 1, mrand.NewChaCha8([32]byte{3}))
		so, err := s.Finish(m)
		if err != nil {
			return
		}
		k0, k1 := so.Keys(0)
		if *k0 == *k1 {
			t.Fatal("equal keys")
		}
	})
}

func BenchmarkBaseOT128(b *testing.B) {
	r := mrand.NewChaCha8([32]byte{4})
	ch := choicesFor(128, r)
	for b.Loop() {
		s, m1, _ := NewSender([]byte("sid"), 128, r)
		_, m2, _ := Receive([]byte("sid"), ch, m1, r)
		if _, err := s.Finish(m2); err != nil {
			b.Fatal(err)
		}
	}
}
