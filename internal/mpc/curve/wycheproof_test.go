package curve

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// TestWycheproofECDH checks ScalarMult against Wycheproof's secp256k1 ECDH
// vectors (shared = x of private·public), which include edge cases of the
// doubling and addition chains and shared secrets with special x.
func TestWycheproofECDH(t *testing.T) {
	raw, err := os.ReadFile("testdata/wycheproof_ecdh_secp256k1.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tests []struct {
			TcID                    int `json:"tcId"`
			Public, Private, Shared string
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Tests) < 400 {
		t.Fatalf("only %d vectors", len(f.Tests))
	}
	for _, tc := range f.Tests {
		pubB, _ := hex.DecodeString(tc.Public)
		privB, _ := hex.DecodeString(tc.Private)
		want, _ := hex.DecodeString(tc.Shared)
		pub, err := secp256k1.ParsePubKey(pubB)
		if err != nil {
			t.Fatalf("tcId %d: %v", tc.TcID, err)
		}
		k, err := DecodeScalar(privB)
		if err != nil {
			t.Fatalf("tcId %d: %v", tc.TcID, err)
		}
		// The point goes through our own decoder too.
		p, err := DecodePoint(pub.SerializeCompressed())
		if err != nil {
			t.Fatalf("tcId %d: DecodePoint: %v", tc.TcID, err)
		}
		var r secp256k1.JacobianPoint
		ScalarMult(k, p, &r)
		got := r.X.Bytes()
		if hex.EncodeToString(got[:]) != hex.EncodeToString(want) {
			t.Fatalf("tcId %d: shared x differs", tc.TcID)
		}
	}
}
