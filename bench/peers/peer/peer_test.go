package peer

import (
	"crypto/rand"
	"crypto/sha256"
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

var _ = sha256.New

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
		p, err := NewKeymesh(tn[0], tn[1])
		if err != nil {
			t.Fatal(err)
		}
		checkProtocol(t, p)
	}
}
