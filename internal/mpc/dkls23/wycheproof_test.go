package dkls23

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

type wycheproofFile struct {
	Algorithm  string `json:"algorithm"`
	TestGroups []struct {
		PublicKey struct {
			Uncompressed string `json:"uncompressed"`
		} `json:"publicKey"`
		Sha   string `json:"sha"`
		Tests []struct {
			TcID   int      `json:"tcId"`
			Msg    string   `json:"msg"`
			Sig    string   `json:"sig"`
			Result string   `json:"result"`
			Flags  []string `json:"flags"`
		} `json:"tests"`
	} `json:"testGroups"`
}

func loadWycheproof(t *testing.T, name string) *wycheproofFile {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var w wycheproofFile
	if err := json.NewDecoder(z).Decode(&w); err != nil {
		t.Fatal(err)
	}
	return &w
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jacobian(pk *secp256k1.PublicKey) *secp256k1.JacobianPoint {
	var p secp256k1.JacobianPoint
	pk.AsJacobian(&p)
	return &p
}

// The raw r ‖ s vectors against Signature.Verify, the verification every
// signing party runs: every invalid signature is rejected; every valid one
// with low s is accepted; a valid one with high s is rejected by our low-s
// rule and accepted once normalised to (r, q−s).
func TestWycheproofP1363(t *testing.T) {
	w := loadWycheproof(t, "ecdsa_secp256k1_sha256_p1363_test.json.gz")
	n := 0
	for _, g := range w.TestGroups {
		if g.Sha != "SHA-256" {
			t.Fatalf("hash %s", g.Sha)
		}
		pk, err := secp256k1.ParsePubKey(mustHex(t, g.PublicKey.Uncompressed))
		if err != nil {
			t.Fatal(err)
		}
		pub := jacobian(pk)
		for _, tc := range g.Tests {
			n++
			digest := sha256.Sum256(mustHex(t, tc.Msg))
			raw := mustHex(t, tc.Sig)
			ok, normalisedOK := verifyRaw(pub, digest[:], raw)
			switch tc.Result {
			case "valid":
				if !ok && !normalisedOK {
					t.Errorf("tcId %d: valid signature rejected", tc.TcID)
				}
			case "invalid":
				if ok || normalisedOK {
					t.Errorf("tcId %d (%v): invalid signature accepted", tc.TcID, tc.Flags)
				}
			default:
				t.Fatalf("tcId %d: result %q", tc.TcID, tc.Result)
			}
		}
	}
	if n != 252 {
		t.Fatalf("ran %d tests, want 252", n)
	}
}

// verifyRaw decodes r ‖ s strictly and verifies; it reports whether the
// signature verified as is, and whether its low-s normalisation did (for
// high-s signatures).
func verifyRaw(pub *secp256k1.JacobianPoint, digest, raw []byte) (ok, normalisedOK bool) {
	if len(raw) != 64 {
		return false, false
	}
	var sig Signature
	if sig.R.SetByteSlice(raw[:32]) || sig.S.SetByteSlice(raw[32:]) {
		return false, false // r or s ≥ q
	}
	if sig.S.IsOverHalfOrder() {
		if sig.Verify(pub, digest) == nil {
			return true, false // must not happen: high s is rejected
		}
		sig.S.Negate()
		return false, sig.Verify(pub, digest) == nil
	}
	return sig.Verify(pub, digest) == nil, false
}

// The Bitcoin-rule vectors (DER, high s invalid) match our policy exactly:
// decred's strict DER parser and Signature.Verify accept precisely the valid
// ones.
func TestWycheproofBitcoin(t *testing.T) {
	w := loadWycheproof(t, "ecdsa_secp256k1_sha256_bitcoin_test.json.gz")
	n := 0
	for _, g := range w.TestGroups {
		pk, err := secp256k1.ParsePubKey(mustHex(t, g.PublicKey.Uncompressed))
		if err != nil {
			t.Fatal(err)
		}
		pub := jacobian(pk)
		for _, tc := range g.Tests {
			n++
			digest := sha256.Sum256(mustHex(t, tc.Msg))
			ok := false
			if der, err := ecdsa.ParseDERSignature(mustHex(t, tc.Sig)); err == nil {
				sig := Signature{R: der.R(), S: der.S()}
				ok = sig.Verify(pub, digest[:]) == nil
			}
			if ok != (tc.Result == "valid") {
				t.Errorf("tcId %d (%v): result %s, we said %v", tc.TcID, tc.Flags, tc.Result, ok)
			}
		}
	}
	if n != 463 {
		t.Fatalf("ran %d tests, want 463", n)
	}
}
