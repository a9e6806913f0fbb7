package peer

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

const testTimeout = 3 * time.Minute

// tssPre loads tss-lib's fixture pre-parameters once per test binary.
func tssPre(tb testing.TB) *TSSPreParams {
	tb.Helper()
	pre, err := TSSFixturePreParams(5)
	if err != nil {
		tb.Fatal(err)
	}
	return pre
}

// checkProtocol runs one keygen and signs two different random digests; it
// asserts that both signatures verify under the joint key, that neither
// verifies for the other digest nor under an unrelated key, and that bytes
// were counted.
func checkProtocol(t *testing.T, p Protocol) {
	t.Helper()
	k, err := p.Keygen()
	if err != nil {
		t.Fatal(err)
	}
	pub := k.PublicKey()
	if pub == nil || !pub.IsOnCurve() {
		t.Fatal("keygen returned no valid public key")
	}
	other, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var digests [2][]byte
	var sigs [2]*Signature
	for i := range digests {
		d := make([]byte, 32)
		if _, err := rand.Read(d); err != nil {
			t.Fatal(err)
		}
		digests[i] = d
		sig, err := p.Sign(k, d)
		if err != nil {
			t.Fatal(err)
		}
		sigs[i] = sig
		if !sig.Verify(d, pub) {
			t.Fatalf("signature %d does not verify under the joint key", i)
		}
		if sig.Verify(d, other.PubKey()) {
			t.Fatalf("signature %d verifies under an unrelated key", i)
		}
		if sig.Bytes <= 0 {
			t.Fatalf("signature %d: no bytes counted", i)
		}
	}
	if sigs[0].Verify(digests[1], pub) || sigs[1].Verify(digests[0], pub) {
		t.Fatal("a signature verifies for the other digest")
	}
}

func TestTSSLib(t *testing.T) {
	if testing.Short() {
		t.Skip("tss-lib keygen takes seconds")
	}
	pre := tssPre(t)
	for _, tn := range [][2]int{{2, 3}} {
		p, err := NewTSSLib(tn[0], tn[1], pre, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		checkProtocol(t, p)
	}
}

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	got := Summarize([]time.Duration{5 * ms, 1 * ms, 3 * ms, 100 * ms})
	if got.Median != 4*ms || got.Min != ms || got.Max != 100*ms || got.Average != 27250*time.Microsecond {
		t.Fatalf("Summarize = %+v", got)
	}
	if got := Summarize([]time.Duration{7 * ms, 2 * ms, 9 * ms}); got.Median != 7*ms {
		t.Fatalf("odd median = %v, want 7ms", got.Median)
	}
	if got := Summarize(nil); got.Median != 0 || got.Runs != nil {
		t.Fatalf("empty = %+v", got)
	}
}

func TestCMP(t *testing.T) {
	if testing.Short() {
		t.Skip("CMP keygen takes seconds")
	}
	for _, tn := range [][2]int{{2, 3}} {
		p, err := NewCMP(tn[0], tn[1], testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		checkProtocol(t, p)
	}
}

func TestDoerner(t *testing.T) { checkProtocol(t, NewDoerner(testTimeout)) }

func TestKryptology(t *testing.T) { checkProtocol(t, NewKryptology()) }

func TestKeymesh(t *testing.T) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		for _, mk := range []func(int, int) (Protocol, error){NewKeymesh, NewKeymeshSequential} {
			p, err := mk(tn[0], tn[1])
			if err != nil {
				t.Fatal(err)
			}
			checkProtocol(t, p)
		}
	}
}

func TestMeasure(t *testing.T) {
	p, err := NewKeymesh(2, 3)
	if err != nil {
		t.Fatal(err)
	}
	r := Measure(p, 2, 3)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if len(r.Keygen.Runs) != 2 || len(r.Sign.Runs) != 3 || r.Sign.Median <= 0 || r.BytesPerSig <= 0 {
		t.Fatalf("Measure = %+v", r)
	}
}

// TestMeasureRejectsBadSignature checks that Measure verifies what it times:
// a protocol returning a wrong signature stops with an error.
func TestMeasureRejectsBadSignature(t *testing.T) {
	p, err := NewKeymesh(2, 2)
	if err != nil {
		t.Fatal(err)
	}
	r := Measure(badSigner{p}, 1, 2)
	if r.Err == nil || len(r.Sign.Runs) != 0 {
		t.Fatalf("a bad signature was accepted: %+v", r)
	}
}

type badSigner struct{ Protocol }

func (b badSigner) Sign(k Key, d []byte) (*Signature, error) {
	sig, err := b.Protocol.Sign(k, d)
	if err == nil {
		var one secp256k1.ModNScalar
		one.SetInt(1)
		sig.S.Add(&one)
	}
	return sig, err
}

func TestUnavailable(t *testing.T) {
	r := Measure(Unavailable("x", 2, 3, errors.New("does not build")), 1, 1)
	if !errors.Is(r.Err, ErrUnavailable) || len(r.Keygen.Runs) != 0 {
		t.Fatalf("Measure(unavailable) = %+v", r)
	}
}
