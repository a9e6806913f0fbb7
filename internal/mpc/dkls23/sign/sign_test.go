package sign_test

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// subsets returns every subset of ps of size k.
func subsets(ps []round.PartyID, k int) [][]round.PartyID {
	if k == 0 {
		return [][]round.PartyID{nil}
	}
	if len(ps) < k {
		return nil
	}
	var out [][]round.PartyID
	for _, s := range subsets(ps[1:], k-1) {
		out = append(out, append([]round.PartyID{ps[0]}, s...))
	}
	return append(out, subsets(ps[1:], k)...)
}

// ethAddress is the Ethereum address of a public key, computed with
// go-ethereum from the uncompressed encoding.
func ethAddress(t *testing.T, pub *secp256k1.JacobianPoint) []byte {
	t.Helper()
	var p secp256k1.JacobianPoint
	p.Set(pub)
	p.ToAffine()
	pk := secp256k1.NewPublicKey(&p.X, &p.Y)
	ecdsaPub, err := crypto.UnmarshalPubkey(pk.SerializeUncompressed())
	if err != nil {
		t.Fatal(err)
	}
	return crypto.PubkeyToAddress(*ecdsaPub).Bytes()
}

// checkEthereum verifies sig over digest the way Ethereum does: Ecrecover
// and SigToPub must return the key, and ValidateSignatureValues must accept
// (r, s) with the homestead low-s rule.
func checkEthereum(t *testing.T, sig *dkls23.Signature, pub *secp256k1.JacobianPoint, digest []byte) {
	t.Helper()
	e := sig.Ethereum()
	if len(e) != 65 || e[64] > 1 {
		t.Fatalf("Ethereum encoding %x", e)
	}
	var p secp256k1.JacobianPoint
	p.Set(pub)
	p.ToAffine()
	want := secp256k1.NewPublicKey(&p.X, &p.Y).SerializeUncompressed()
	got, err := crypto.Ecrecover(digest, e)
	if err != nil {
		t.Fatalf("Ecrecover: %v", err)
	}
	if string(got) != string(want) {
		t.Fatalf("Ecrecover returned another key")
	}
	rec, err := crypto.SigToPub(digest, e)
	if err != nil {
		t.Fatalf("SigToPub: %v", err)
	}
	if string(crypto.PubkeyToAddress(*rec).Bytes()) != string(ethAddress(t, pub)) {
		t.Fatal("SigToPub recovered another address")
	}
	r, s := new(big.Int).SetBytes(e[:32]), new(big.Int).SetBytes(e[32:64])
	if !crypto.ValidateSignatureValues(e[64], r, s, true) {
		t.Fatal("go-ethereum rejects (r, s, v) under the homestead rules")
	}
	if !crypto.VerifySignature(want, digest, e[:64]) {
		t.Fatal("go-ethereum VerifySignature rejects the signature")
	}
}

func TestSignEverySubset(t *testing.T) {
	for _, tc := range []struct{ t, n, digests int }{{2, 3, 3}, {3, 5, 2}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(t *testing.T) {
			var shares []*dkls23.Share
			if tc.n == 3 {
				shares = shares23(t)
			} else {
				dkls23test.SkipUnderRace(t)
				var err error
				if shares, err = dkls23test.Keygen(tc.t, tc.n, 1); err != nil {
					t.Fatal(err)
				}
			}
			pub := shares[0].PublicKey()
			for _, signers := range subsets(dkls23test.Parties(tc.n), tc.t) {
				digests := tc.digests
				if dkls23test.Race() {
					digests = 1
				}
				for k := range digests {
					digest := make([]byte, 32)
					rand.Read(digest)
					sig, _, err := dkls23test.Sign(shares, signers, digest, nil, uint64(k))
					if err != nil {
						t.Fatalf("signers %v: %v", signers, err)
					}
					if err := sig.Verify(pub, digest); err != nil {
						t.Fatalf("signers %v: %v", signers, err)
					}
					if sig.S.IsOverHalfOrder() {
						t.Fatal("high s")
					}
					checkEthereum(t, sig, pub, digest)
				}
			}
		})
	}
}

func TestSignMoreThanThreshold(t *testing.T) {
	shares := shares23(t)
	digest := make([]byte, 32)
	rand.Read(digest)
	sig, _, err := dkls23test.Sign(shares, []round.PartyID{1, 2, 3}, digest, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkEthereum(t, sig, shares[0].PublicKey(), digest)
}
