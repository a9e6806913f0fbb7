// Package sign is DKLs23 threshold ECDSA signing over secp256k1: Protocol
// 3.6 of Doerner, Kondi, Lee, shelat, "Threshold ECDSA in Three Rounds"
// (IEEE S&P 2024, IACR ePrint 2023/765), for any set of at least t holders
// of shares made by package keygen. Step numbers below are the paper's (as
// the reference implementation 0xCarbon/DKLs23 numbers them).
//
// Intended use, one session per signing party:
//
//	// The coordinator picks the signer set and a fresh nonce (≥ 16 bytes)
//	// and sends them, with the 32-byte digest, to every signer.
//	s, err := sign.NewSession(share, signers, digest, nonce, crypto/rand.Reader)
//	out, err := s.Start()            // send every message in out
//	for each message m that arrives:
//	        out, err = s.Handle(m)   // send every message in out
//	res, err := s.Result()           // once s.Done()
//	sig := res.(*dkls23.Signature)   // sig.Ethereum() is r ‖ s ‖ v
//
// With all parties in one process (tests, benchmarks), dkls23test.Sign or
// mpctest.Run does the message moving.
//
// Each party i, with Lagrange-weighted share sk_i = λ_i·x_i + ζ_i (ζ_i from
// the zero-sharing functionality F_Zero on the pairwise seeds of the share
// record, so that Σ sk_i = sk and the additive shares are fresh in every
// session):
//
//	engine rounds 1–2 (round.Fresh): every signer broadcasts 32 fresh random
//	   bytes; once all are in, sid* = H(base session ID, contributions).
//	   Everything below (mulSID, commitments, zero shares, OT and VOLE
//	   session IDs, echo digests) uses sid*.
//	engine round 2, continued (steps 4–6): check the signer set
//	   (NewSession); sample the instance key r_i and the inversion mask
//	   φ_i, R_i = r_i·G; broadcast a commitment to R_i; for every peer j
//	   start the random-VOLE multiplication with j as Alice and i as Bob
//	   with random input χ_{i,j} (direct).
//	engine round 3 (step 7): as Alice with every peer j, multiply
//	   (r_i, sk_i) by χ_{j,i} → (c_u, c_v); broadcast R_i (the opening) and
//	   pk_i = sk_i·G; send j Γ_u = c_u·G, Γ_v = c_v·G, ψ_{i,j} = φ_i − χ_{i,j}
//	   and the multiplication's second message (direct).
//	engine round 4 (steps 8–9): finish every multiplication as Bob →
//	   (d_u, d_v); check χ_{i,j}·R_j = Γ_u + d_u·G and χ_{i,j}·pk_j = Γ_v +
//	   d_v·G for every j (blaming j; the paper writes λ_j·P(j) for pk_j in
//	   the second check, which with the zero shares must read pk_j, as its
//	   own derivation of Γ_v shows), and Σ_j pk_j = pk; R = Σ R_j,
//	   r = x(R) mod q; u_i = r_i·(φ_i + Σ ψ_{j,i}) + Σ (c_u + d_u),
//	   v_i = sk_i·(φ_i + Σ ψ_{j,i}) + Σ (c_v + d_v), w_i = H(m)·φ_i + r·v_i;
//	   broadcast (u_i, w_i).
//	engine round 5 (step 10): s = Σ w_j / Σ u_j; normalise to low s, compute
//	   the recovery id, and verify the signature against pk with decred's
//	   ecdsa.Verify before output.
//
// Σ u_i = r·φ and Σ w_i = φ·(H(m) + r·sk), so s = (H(m) + r·sk)/k with the
// nonce k = Σ r_i.
//
// Before each use of the OT correlation with a peer j (starting a
// multiplication as Bob, answering as Alice, finishing as Bob), the round
// checks that j is not refused on the share.
//
// Identifiable abort: a message that fails a check (a commitment that does
// not open, a multiplication whose check fails, a Γ check) aborts naming its
// sender. Three failures cannot be attributed without zero-knowledge proofs
// the paper does not have: Σ pk_j ≠ pk (a party signing with a share of
// another generation, or a faulty one), Σ u_j = 0, and a final signature
// that does not verify (a bad ψ, u_j or w_j). They never output a
// signature, and abort naming no one, except with exactly two signers: then
// the fault can only be the peer's, and the abort names it. An echo
// mismatch names only what the receiver can prove (round.Session).
//
// Selective abort: a multiplication check that fails (rvole.ErrCheatDetected
// or the Γ check) may have leaked a bit of our OT secrets to the peer it
// names (Trail of Bits, "Don't overextend your Oblivious Transfer", 2023;
// GHSA-7f6p-phw2-8253). The session refuses that peer on the share at once
// (dkls23.Share.Refuse): every other open session of the share checks the
// refusal before it next uses its OT correlation with the peer and aborts
// with ErrRefused, and NewSession refuses it from then on. The caller
// persists the share (its encoding holds the refusals; Cheaters(err) names
// the peers). A refresh or resharing keeps the refusals.
//
// Fresh session IDs: the base session ID (SessionID) binds the protocol,
// the signer set, the threshold, the coordinator's nonce, the key id and
// the digest; parties that disagree on any of them never exchange a
// message. The protocol runs under sid*, into which every signer first
// mixed its own randomness (round.Fresh), so that no coordinator can make
// an honest signer answer two OT extensions under one session ID by
// repeating a nonce. Each session's randomness is used once, and its
// secrets are wiped when it ends, on every path (round.Wiper).
package sign

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// Protocol is the protocol name hashed into session IDs.
const Protocol = "keymesh/dkls23/sign/v1"

// ErrKeyMismatch is wrapped by the abort when the signers' public key
// shares do not add up to the public key.
var ErrKeyMismatch = errors.New("sign: the signers' key shares do not add up to the public key")

// ErrRefused is wrapped by NewSession's error when a signer has been
// refused (see dkls23.Share.Refuse), and by the abort of an open session
// that finds a peer refused before it next uses its OT correlation with
// it (the abort names that peer).
var ErrRefused = errors.New("sign: signer was caught cheating and is refused")

// Cheaters returns the parties that err (a signing session's result) proves
// deviated in a random-VOLE multiplication: its culprits if err is an
// *round.AbortError wrapping rvole.ErrCheatDetected or a failed Γ check,
// nil otherwise. The session has already refused them on its share
// (dkls23.Share.Refuse), which stops every other open session with them;
// the caller persists the share (MarshalBinary includes the refusals) and
// logs the event.
func Cheaters(err error) []round.PartyID {
	var ae *round.AbortError
	if !errors.As(err, &ae) {
		return nil
	}
	if errors.Is(err, rvole.ErrCheatDetected) || errors.Is(err, errGammaCheck) {
		return slices.Clone(ae.Culprits)
	}
	return nil
}

// config is what every round of one party needs.
type config struct {
	// sid is sid*, the fresh session ID of round.Fresh: the base ID of
	// SessionID with every signer's own contribution mixed in. It is set
	// when the contributions are in, before any round below runs.
	sid     round.SessionID
	share   *dkls23.Share
	self    round.PartyID
	signers []round.PartyID // sorted, includes self
	peers   []round.PartyID // signers without self
	digest  []byte
	m       secp256k1.ModNScalar // H(m): the digest mod q
	rand    io.Reader

	// adv is nil except in sessions built by the keymesh_adversary build's
	// hooks (TestingOnlyEvilSession): an attacker that plays Bob with chosen
	// choice bits towards one peer and captures that peer's reply. Nothing
	// in a production build sets it.
	adv *adversary
	// testingOnlyTrace, when set (internal tests), sees every round this
	// session builds, so a test can inspect its secrets after an abort.
	testingOnlyTrace func(round.Round)
}

// adversary is the state of an evil session (see config.adv).
type adversary struct {
	victim   round.PartyID
	startBob func(setup *rvole.BobSetup, sid []byte, beta *secp256k1.ModNScalar, rand io.Reader) (*rvole.BobMul, []byte, error)
	// capture, filled as the session runs.
	reply    []byte               // the victim's multiplication message 2 (its Alice reply)
	victimPK []byte               // pk_i the victim broadcast in engine round 3
	ownSK    secp256k1.ModNScalar // the attacker's own sk_i of the session
}

func (c *config) trace(r round.Round) {
	if c.testingOnlyTrace != nil {
		c.testingOnlyTrace(r)
	}
}

// refused returns an abort wrapping ErrRefused if peer j is refused on the
// share now. Every round calls it right before it uses the OT correlation
// with j (before it sends or processes a multiplication message), so that a
// refusal made while the session is open (by another session of the same
// share) takes effect at once.
func (c *config) refused(j round.PartyID) error {
	if c.share.Refused(j) {
		return round.Abort(fmt.Errorf("%w: %v", ErrRefused, j), j)
	}
	return nil
}

// caught refuses peer j on the share at once if err proves that j deviated
// in a multiplication (rvole.ErrCheatDetected, or the Γ check), so that no
// other open session of the share uses its OT correlation with j again.
// The caller still persists the share (Cheaters names j).
func (c *config) caught(j round.PartyID, err error) {
	if errors.Is(err, rvole.ErrCheatDetected) || errors.Is(err, errGammaCheck) {
		_ = c.share.Refuse(j) // j is a peer of the share: no error
	}
}

// unattributable returns the culprits of an abort that the protocol cannot
// attribute (Σ pk_j ≠ pk, Σ u_j = 0, a combined signature that does not
// verify): nobody, unless there are exactly two signers, when the honest
// party knows that the fault is its peer's.
func (c *config) unattributable() []round.PartyID {
	if len(c.peers) == 1 {
		return c.peers
	}
	return nil
}

// SessionID returns the base ID of the signing session for these inputs
// (the one its messages carry and the node records); every signer computes
// the same one. The protocol runs under a fresh ID derived from it
// ((*round.Session).FreshID).
func SessionID(share *dkls23.Share, signers []round.PartyID, digest, nonce []byte) (round.SessionID, error) {
	return round.NewSessionID(Protocol, signers, share.Threshold(), nonce, share.KeyID(), digest)
}

// newConfig checks NewSession's inputs and returns the config and the
// base session ID.
func newConfig(share *dkls23.Share, signers []round.PartyID, digest, nonce []byte, rand io.Reader) (*config, round.SessionID, error) {
	var zero round.SessionID
	if share == nil {
		return nil, zero, errors.New("sign: no share")
	}
	if len(digest) != dkls23.DigestLen {
		return nil, zero, fmt.Errorf("sign: digest of %d bytes, want %d", len(digest), dkls23.DigestLen)
	}
	ss, err := round.SortParties(signers)
	if err != nil {
		return nil, zero, fmt.Errorf("sign: %w", err)
	}
	if len(ss) < share.Threshold() {
		return nil, zero, fmt.Errorf("sign: %d signers for a threshold of %d", len(ss), share.Threshold())
	}
	all := share.Parties()
	for _, p := range ss {
		if !slices.Contains(all, p) {
			return nil, zero, fmt.Errorf("sign: %v holds no share of this key", p)
		}
	}
	if !slices.Contains(ss, share.Self()) {
		return nil, zero, fmt.Errorf("sign: %v is not among the signers", share.Self())
	}
	for _, p := range ss {
		if share.Refused(p) {
			return nil, zero, fmt.Errorf("%w: %v", ErrRefused, p)
		}
	}
	sid, err := SessionID(share, ss, digest, nonce)
	if err != nil {
		return nil, zero, fmt.Errorf("sign: %w", err)
	}
	c := &config{share: share, self: share.Self(), signers: ss, digest: slices.Clone(digest), rand: rand}
	for _, p := range ss {
		if p != c.self {
			c.peers = append(c.peers, p)
		}
	}
	c.m.SetByteSlice(digest)
	return c, sid, nil
}

// NewSession returns party share.Self()'s signing session for digest (32
// bytes: only digests are signed) among signers (at least t holders of
// shares of the same key, self included). nonce is the coordinator's, the
// same at every signer (≥ 16 bytes); rand supplies this party's randomness
// (crypto/rand.Reader in production). The output is a *dkls23.Signature
// that has been verified against the public key.
//
// The session's ID (ID) is SessionID's, which binds the nonce and the
// inputs; the protocol itself runs under a fresh ID (FreshID) into which
// every signer mixes its own randomness in a first exchange (round.Fresh),
// before anything derived from its share is sent. A repeated nonce, by
// mistake or by a malicious coordinator replaying an invitation, therefore
// never makes this party answer two OT extensions under one session ID,
// which would hand the peer its share (two extensions with choice bits
// 0…0 and 1…1 give ã + ã′ = 2·sk_i; Trail of Bits, "Don't overextend your
// OT", 2023). The node records the base IDs it ran as defence in depth;
// the library's guarantee does not depend on that record.
//
// A peer refused on share (dkls23.Share.Refuse), now or at any time while
// the session runs, makes it fail with an error wrapping ErrRefused before
// its OT correlation with that peer is used again.
func NewSession(share *dkls23.Share, signers []round.PartyID, digest, nonce []byte, rand io.Reader) (*round.Session, error) {
	c, sid, err := newConfig(share, signers, digest, nonce, rand)
	if err != nil {
		return nil, err
	}
	return c.session(sid)
}

// session builds the round.Session of c under base ID sid.
func (c *config) session(sid round.SessionID) (*round.Session, error) {
	s, err := round.NewFreshSession(sid, c.self, c.signers, c.rand, func(fresh round.SessionID) (round.Round, error) {
		c.sid = fresh
		r := &round1{config: c}
		c.trace(r)
		return r, nil
	})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return s, nil
}

// mulSID is the session ID of the multiplication in which alice is Alice and
// bob is Bob: unique per signing session and per ordered pair, and bound to
// the key and the share generation.
func (c *config) mulSID(alice, bob round.PartyID) []byte {
	t := round.NewTranscript("keymesh/dkls23/sign/vole")
	t.WriteBytes(c.sid[:])
	t.WriteUint64(uint64(alice))
	t.WriteUint64(uint64(bob))
	t.WriteBytes(c.share.KeyID())
	g := c.share.Generation()
	t.WriteBytes(g[:])
	return t.Sum(nil)
}

// commitment is com_i = H(sid, i, R_i, salt) (the paper's F_Com).
func (c *config) commitment(p round.PartyID, bigR, salt []byte) []byte {
	t := round.NewTranscript("keymesh/dkls23/sign/commit")
	t.WriteBytes(c.sid[:])
	t.WriteUint64(uint64(p))
	t.WriteBytes(bigR)
	t.WriteBytes(salt)
	return t.Sum(nil)
}

// zeroShare is ζ_i of F_Zero: Σ_j ±PRF(seed_{i,j}, sid) over the other
// signers, + when i < j and − otherwise, so that the ζ_i of all signers sum
// to zero. The seeds come from key generation or the last refresh.
func (c *config) zeroShare() secp256k1.ModNScalar {
	var z secp256k1.ModNScalar
	for _, j := range c.peers {
		seed := c.share.Peer(j).Seed()
		t := round.NewTranscript("keymesh/dkls23/sign/zero-share")
		t.WriteBytes(seed[:])
		t.WriteBytes(c.sid[:])
		wide := t.Read(nil, 64)
		v := dkls23.ReduceWide(wide)
		clear(wide)
		if c.self > j {
			v.Negate()
		}
		z.Add(&v)
		v.Zero()
	}
	return z
}
