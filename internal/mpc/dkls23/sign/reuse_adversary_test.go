//go:build keymesh_adversary

package sign_test

import (
	"crypto/rand"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// realKey returns the private key of shares, λ_1·x_1 + λ_2·x_2 over the
// signers {1, 2}: the oracle the attack is checked against.
func realKey(t *testing.T, shares []*dkls23.Share, signers []round.PartyID) *secp256k1.ModNScalar {
	t.Helper()
	var sk secp256k1.ModNScalar
	for _, sh := range shares {
		l, err := dkls23.Lagrange(signers, sh.Self())
		if err != nil {
			t.Fatal(err)
		}
		x := sh.SecretShare()
		sk.Add(l.Mul(x))
		x.Zero()
	}
	return &sk
}

// evilRun runs one signing session between the attacker (party 1, playing
// Bob towards party 2 with every choice bit = choice) and the honest
// party 2, both given the same invitation (digest, nonce), and returns the
// capture. Both parties finish: the attacker's session is well formed.
func evilRun(t *testing.T, shares []*dkls23.Share, signers []round.PartyID, digest, nonce []byte, choice byte, seed uint64) *sign.TestingOnlyCapture {
	t.Helper()
	evil, capture, err := sign.TestingOnlyEvilSession(shares[0], signers, digest, nonce, 2, choice, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	honest, err := sign.NewSession(shares[1], signers, digest, nonce, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if evil.ID() != honest.ID() {
		t.Fatal("the two sessions have different base IDs")
	}
	res := mpctest.Run([]*round.Session{evil, honest}, nil, seed)
	if err := res.Err(); err != nil {
		t.Fatalf("choice %d: %v", choice, err)
	}
	sig, ok := res.Outputs[2].(*dkls23.Signature)
	if !ok || sig.Verify(shares[1].PublicKey(), digest) != nil {
		t.Fatal("the honest party did not output a valid signature")
	}
	if !capture.Complete() {
		t.Fatal("capture incomplete")
	}
	return capture
}

// Finding 1 of issue 12, in process: a malicious gateway (party 1) that
// sends the same signing invitation twice and plays Bob with choice bits
// 0…0 and then 1…1 learns the honest co-signer's additive share, and with
// its own the private key, when the co-signer does not mix fresh
// randomness into the session ID. With the defence on, the same
// computation yields nothing.
func TestSessionReuseLeaksShareOnlyWithoutFreshness(t *testing.T) {
	shares := shares23(t)[:2]
	signers := []round.PartyID{1, 2}
	want := realKey(t, shares, signers)
	defer round.TestingOnlySetFreshness(round.TestingOnlySetFreshness(true))

	t.Run("freshness off: the attack works", func(t *testing.T) {
		round.TestingOnlySetFreshness(false)
		defer round.TestingOnlySetFreshness(true)
		digest, nonce := newDigest(), dkls23test.Nonce()
		c0 := evilRun(t, shares, signers, digest, nonce, 0, 1)
		c1 := evilRun(t, shares, signers, digest, nonce, 1, 2)
		f0, _ := c0.FreshID()
		f1, _ := c1.FreshID()
		if f0 != f1 {
			t.Fatal("without freshness the repeated invitation should repeat the session ID")
		}
		skI, err := sign.TestingOnlyExtractShare(c0, c1)
		if err != nil {
			t.Fatal(err)
		}
		if !sign.TestingOnlyCheckShare(c0, skI) || !sign.TestingOnlyCheckShare(c1, skI) {
			t.Fatal("the extracted share does not match the victim's public share: the test cannot see the attack")
		}
		key, err := sign.TestingOnlyRecoverKey(c0, c1)
		if err != nil {
			t.Fatal(err)
		}
		if !sign.TestingOnlyKeyMatches(shares[0], key) || !key.Equals(want) {
			t.Fatal("the recovered key is not the real key")
		}
		xI, err := sign.TestingOnlyVictimShamirShare(c0, c1)
		if err != nil {
			t.Fatal(err)
		}
		if !sign.TestingOnlyCheckShamirShare(shares[0], 2, xI) || !xI.Equals(shares[1].SecretShare()) {
			t.Fatal("the recovered Shamir share is not the victim's")
		}
		xI.Zero()
		key.Zero()
		skI.Zero()
	})

	t.Run("freshness on: the attack yields nothing", func(t *testing.T) {
		digest, nonce := newDigest(), dkls23test.Nonce()
		c0 := evilRun(t, shares, signers, digest, nonce, 0, 3)
		c1 := evilRun(t, shares, signers, digest, nonce, 1, 4)
		f0, _ := c0.FreshID()
		f1, _ := c1.FreshID()
		if f0 == f1 {
			t.Fatal("the repeated invitation repeated the session ID")
		}
		skI, err := sign.TestingOnlyExtractShare(c0, c1)
		if err != nil {
			t.Fatal(err)
		}
		if sign.TestingOnlyCheckShare(c0, skI) || sign.TestingOnlyCheckShare(c1, skI) {
			t.Fatal("the attack recovered the victim's share despite fresh session IDs")
		}
		key, err := sign.TestingOnlyRecoverKey(c0, c1)
		if err != nil {
			t.Fatal(err)
		}
		if sign.TestingOnlyKeyMatches(shares[0], key) || key.Equals(want) {
			t.Fatal("the attack recovered the key despite fresh session IDs")
		}
		if xI, err := sign.TestingOnlyVictimShamirShare(c0, c1); err != nil || sign.TestingOnlyCheckShamirShare(shares[0], 2, xI) {
			t.Fatalf("the attack recovered the Shamir share despite fresh session IDs (err %v)", err)
		}
	})
}

// The same invitation twice at an honest party: with freshness on, the two
// sessions run under different sid* (the base ID is the same); with it
// off, under the same one.
func TestRepeatedInvitationGetsFreshID(t *testing.T) {
	shares := shares23(t)[:2]
	signers := []round.PartyID{1, 2}
	digest, nonce := newDigest(), dkls23test.Nonce()
	defer round.TestingOnlySetFreshness(round.TestingOnlySetFreshness(true))
	for _, on := range []bool{true, false} {
		round.TestingOnlySetFreshness(on)
		var ids []round.SessionID
		for i := range 2 {
			var ss []*round.Session
			for _, sh := range shares {
				s, err := sign.NewSession(sh, signers, digest, nonce, rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				ss = append(ss, s)
			}
			if err := mpctest.Run(ss, nil, uint64(i)).Err(); err != nil {
				t.Fatal(err)
			}
			id, ok := ss[1].FreshID()
			if !ok {
				t.Fatal("no fresh ID after the run")
			}
			ids = append(ids, id)
		}
		if same := ids[0] == ids[1]; same == on {
			t.Fatalf("freshness %v: the two sessions' sid* equal: %v", on, same)
		}
	}
}
