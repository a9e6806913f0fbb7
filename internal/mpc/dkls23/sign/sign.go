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
//	engine round 1 (steps 4–6): check the signer set (NewSession); sample
//	   the instance key r_i and the inversion mask φ_i, R_i = r_i·G; broadcast a commitment to R_i; for every peer j
//	   start the random-VOLE multiplication with j as Alice and i as Bob with
//	   random input χ_{i,j} (direct).
//	engine round 2 (step 7): as Alice with every peer j, multiply
//	   (r_i, sk_i) by χ_{j,i} → (c_u, c_v); broadcast R_i (the opening) and
//	   pk_i = sk_i·G; send j Γ_u = c_u·G, Γ_v = c_v·G, ψ_{i,j} = φ_i − χ_{i,j}
//	   and the multiplication's second message (direct).
//	engine round 3 (steps 8–9): finish every multiplication as Bob →
//	   (d_u, d_v); check χ_{i,j}·R_j = Γ_u + d_u·G and χ_{i,j}·pk_j = Γ_v +
//	   d_v·G for every j (blaming j; the paper writes λ_j·P(j) for pk_j in
//	   the second check, which with the zero shares must read pk_j, as its
//	   own derivation of Γ_v shows), and Σ_j pk_j = pk; R = Σ R_j,
//	   r = x(R) mod q; u_i = r_i·(φ_i + Σ ψ_{j,i}) + Σ (c_u + d_u),
//	   v_i = sk_i·(φ_i + Σ ψ_{j,i}) + Σ (c_v + d_v), w_i = H(m)·φ_i + r·v_i;
//	   broadcast (u_i, w_i).
//	engine round 4 (step 10): s = Σ w_j / Σ u_j; normalise to low s, compute
//	   the recovery id, and verify the signature against pk with decred's
//	   ecdsa.Verify before output.
//
// Σ u_i = r·φ and Σ w_i = φ·(H(m) + r·sk), so s = (H(m) + r·sk)/k with the
// nonce k = Σ r_i.
//
// Identifiable abort: a message that fails a check (a commitment that does
// not open, a multiplication whose check fails, a Γ check) aborts naming its
// sender. Two failures cannot be attributed without zero-knowledge proofs the
// paper does not have: Σ pk_j ≠ pk (a party signing with a share of another
// generation, or a faulty one) and a final signature that does not verify (a
// bad ψ, u_j or w_j). Both abort with no culprit, and never output a
// signature.
//
// Selective abort: a multiplication check that fails (rvole.ErrCheatDetected
// or the Γ check) may have leaked a bit of our OT secrets to the peer it
// names (Trail of Bits, "Don't overextend your Oblivious Transfer", 2023).
// The caller must stop using OT correlations with it: Cheaters(err) names
// the peers to pass to (*dkls23.Share).Refuse before persisting the share;
// NewSession then refuses them until a refresh re-keys every OT setup.
//
// Every session ID binds the protocol, the signer set, the threshold, the
// nonce, the key id and the digest; parties that disagree on any of them
// never exchange a message. Each session's randomness is used once.
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
// refused (see dkls23.Share.Refuse).
var ErrRefused = errors.New("sign: signer was caught cheating and is refused")

// Cheaters returns the parties that err (a signing session's result) proves
// deviated in a random-VOLE multiplication: its culprits if err is an
// *round.AbortError wrapping rvole.ErrCheatDetected or a failed Γ check,
// nil otherwise. The caller should Refuse them on its share and persist it.
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
	sid     round.SessionID
	share   *dkls23.Share
	self    round.PartyID
	signers []round.PartyID // sorted, includes self
	peers   []round.PartyID // signers without self
	digest  []byte
	m       secp256k1.ModNScalar // H(m): the digest mod q
	rand    io.Reader
}

// SessionID returns the ID of the signing session for these inputs; every
// signer computes the same one.
func SessionID(share *dkls23.Share, signers []round.PartyID, digest, nonce []byte) (round.SessionID, error) {
	return round.NewSessionID(Protocol, signers, share.Threshold(), nonce, share.KeyID(), digest)
}

// NewSession returns party share.Self()'s signing session for digest (32
// bytes: only digests are signed) among signers (at least t holders of
// shares of the same key, self included). nonce is fresh per signature and
// the same at every signer (≥ 16 bytes); rand supplies this party's
// randomness (crypto/rand.Reader in production). The output is a
// *dkls23.Signature that has been verified against the public key.
//
// The nonce must never repeat for a key: the session ID keys the OT
// extension of every pairwise multiplication, and a repeated one would make
// a party reuse OT pads across two signatures, which leaks its share to the
// peer (Trail of Bits, "Don't overextend your OT", 2023). The node keeps a
// record of the signing session IDs it has taken part in and refuses a
// repeat (the transport's replay check); SessionID computes them.
func NewSession(share *dkls23.Share, signers []round.PartyID, digest, nonce []byte, rand io.Reader) (*round.Session, error) {
	if share == nil {
		return nil, errors.New("sign: no share")
	}
	if len(digest) != dkls23.DigestLen {
		return nil, fmt.Errorf("sign: digest of %d bytes, want %d", len(digest), dkls23.DigestLen)
	}
	ss, err := round.SortParties(signers)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if len(ss) < share.Threshold() {
		return nil, fmt.Errorf("sign: %d signers for a threshold of %d", len(ss), share.Threshold())
	}
	all := share.Parties()
	for _, p := range ss {
		if !slices.Contains(all, p) {
			return nil, fmt.Errorf("sign: %v holds no share of this key", p)
		}
	}
	if !slices.Contains(ss, share.Self()) {
		return nil, fmt.Errorf("sign: %v is not among the signers", share.Self())
	}
	for _, p := range ss {
		if share.Refused(p) {
			return nil, fmt.Errorf("%w: %v", ErrRefused, p)
		}
	}
	sid, err := SessionID(share, ss, digest, nonce)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	c := &config{sid: sid, share: share, self: share.Self(), signers: ss, digest: slices.Clone(digest), rand: rand}
	for _, p := range ss {
		if p != c.self {
			c.peers = append(c.peers, p)
		}
	}
	c.m.SetByteSlice(digest)
	s, err := round.NewSession(sid, c.self, ss, &round1{config: c})
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
