// Package dkg generates and refreshes the t-of-n shared key of package oprf
// without a dealer, on the round engine (internal/mpc/round).
//
// Key generation is the Pedersen DKG with Feldman commitments and a Schnorr
// proof of knowledge of each dealer's constant term, as in FROST KeyGen
// (Komlo and Goldberg, "FROST", SAC 2020, Figure 1), over ristretto255:
//
//	rounds 0a, 0b (round.Fresh, engine rounds 1–2): every party broadcasts
//	         32 fresh random bytes; sid* = H(sid, contributions) is the
//	         session ID of everything below (engine round k+1 is round k)
//	round 1: party i picks f_i(X) = a_i0 + a_i1·X + … + a_i(t−1)·X^(t−1),
//	         broadcasts C_ik = a_ik·G for every k and σ_i = (R_i, μ_i), a
//	         Schnorr proof of knowledge of a_i0 bound to the session, i and C_i
//	round 2: verify every σ_j; send f_i(j) to each party j (direct)
//	round 3: check f_j(i)·G = Σ_k i^k·C_jk for every j; k_i = Σ_j f_j(i),
//	         Y = Σ_j C_j0, Y_x = Σ_j Σ_k x^k·C_jk; broadcast a digest of
//	         the resulting public key
//	round 4: every digest equals ours → output the oprf.KeyShare
//
// Refresh (proactive secret sharing, Herzberg, Jarecki, Krawczyk and Yung,
// CRYPTO 1995, §3.1) runs the same rounds with a_i0 = 0, so no C_i0 and no
// proof of knowledge: k_i' = k_i + Σ_j f_j(i) and Y_x' = Y_x + Σ_j Σ_k
// x^k·C_jk, while Y = k·G is unchanged. New shares lie on a fresh
// polynomial, so they do not combine with old ones.
//
// The round engine makes every broadcast echo-checked (an inconsistent
// broadcast of commitments aborts naming the broadcaster before anyone
// outputs) and binds every message to the session ID. A bad proof of
// knowledge or a share that does not match its sender's commitments aborts
// naming the sender. Every party takes part (n-of-n liveness); a party that
// aborts sends no round-4 digest, so nobody else outputs either.
//
// Pure code: no I/O, no logging.
package dkg

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/cloudflare/circl/group"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/oprf"
)

const (
	// KeygenProtocol names key generation in session IDs.
	KeygenProtocol = "keymesh/oprf/dkg/v1"
	// RefreshProtocol names share refresh in session IDs.
	RefreshProtocol = "keymesh/oprf/refresh/v1"
)

var g = group.Ristretto255

// KeygenSessionID returns the session ID every party must use to generate a
// threshold-of-parties key. nonce is fresh and agreed by the parties.
func KeygenSessionID(parties []round.PartyID, threshold int, nonce []byte) (round.SessionID, error) {
	return round.NewSessionID(KeygenProtocol, parties, threshold, nonce)
}

// RefreshSessionID returns the session ID for refreshing the shares of pub;
// it binds the public key (shares included), so a refresh applies to one key
// state only.
func RefreshSessionID(pub *oprf.PublicKey, nonce []byte) (round.SessionID, error) {
	b, err := pub.MarshalBinary()
	if err != nil {
		return round.SessionID{}, err
	}
	return round.NewSessionID(RefreshProtocol, partyIDs(pub.IDs()), pub.Threshold(), nonce, b)
}

// config is what every round knows.
type config struct {
	// sid is sid*, the fresh session ID of round.Fresh: the base ID with
	// every party's own contribution mixed in, set before round 1 runs.
	sid     round.SessionID
	self    round.PartyID
	parties []round.PartyID // sorted, self included
	t       int
	old     *oprf.KeyShare // nil for key generation
}

// refresh reports whether this run refreshes an existing key.
func (c *config) refresh() bool { return c.old != nil }

// first is the index of the first committed coefficient: 0 for key
// generation, 1 for refresh (whose constant term is 0).
func (c *config) first() int {
	if c.refresh() {
		return 1
	}
	return 0
}

// NewKeygen returns round 1 of key generation for party self, to pass to
// round.NewSession with sid (once). The output (round.Session.Result) is an
// *oprf.KeyShare. sid must come from KeygenSessionID with the same parties
// and threshold.
//
// The returned round is round.Fresh's contribution exchange: every party
// first mixes 32 bytes of its own randomness (crypto/rand) into the session
// ID, and the rounds of the package doc run one engine round later under
// that fresh ID, so that a repeated nonce never makes a party run the same
// session twice.
func NewKeygen(sid round.SessionID, self round.PartyID, parties []round.PartyID, threshold int) (round.Round, error) {
	ps, err := round.SortParties(parties)
	if err != nil {
		return nil, fmt.Errorf("dkg: %w", err)
	}
	if !slices.Contains(ps, self) {
		return nil, fmt.Errorf("dkg: %v is not among the parties", self)
	}
	if len(ps) > oprf.MaxNodes {
		return nil, fmt.Errorf("dkg: %d parties, at most %d are supported", len(ps), oprf.MaxNodes)
	}
	if threshold < 1 || threshold > len(ps) {
		return nil, fmt.Errorf("dkg: threshold %d out of range for %d parties", threshold, len(ps))
	}
	return fresh(&config{self: self, parties: ps, t: threshold}), nil
}

// fresh returns the contribution round that starts c's run (round.Fresh).
func fresh(c *config) round.Round {
	return round.Fresh(rand.Reader, func(sid round.SessionID) (round.Round, error) {
		c.sid = sid
		return &round1{config: c}, nil
	})
}

// NewRefresh returns round 1 of a refresh of share, run by every node of
// its public key, to pass to round.NewSession with sid (once). The output is
// the new *oprf.KeyShare, for the same public key Y; the caller replaces the
// old share with it only once the run succeeds (and should then Zero the old
// one). sid must come from RefreshSessionID for share.Public(). As with
// NewKeygen, the run starts with a contribution exchange (round.Fresh).
func NewRefresh(sid round.SessionID, share *oprf.KeyShare) (round.Round, error) {
	if share == nil {
		return nil, errors.New("dkg: nil key share")
	}
	pub := share.Public()
	return fresh(&config{
		self:    round.PartyID(share.ID()),
		parties: partyIDs(pub.IDs()),
		t:       pub.Threshold(),
		old:     share,
	}), nil
}

// NewKeygenSessions returns one key-generation session per party under a
// fresh session ID, for running all parties in one process (tests, tools).
func NewKeygenSessions(parties []round.PartyID, threshold int) ([]*round.Session, error) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	sid, err := KeygenSessionID(parties, threshold, nonce)
	if err != nil {
		return nil, fmt.Errorf("dkg: %w", err)
	}
	out := make([]*round.Session, 0, len(parties))
	for _, p := range parties {
		r, err := NewKeygen(sid, p, parties, threshold)
		if err != nil {
			return nil, err
		}
		s, err := round.NewSession(sid, p, parties, r)
		if err != nil {
			return nil, fmt.Errorf("dkg: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// NewRefreshSessions returns one refresh session per share (all shares of
// one key) under a fresh session ID.
func NewRefreshSessions(shares []*oprf.KeyShare) ([]*round.Session, error) {
	if len(shares) == 0 {
		return nil, errors.New("dkg: no shares")
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	sid, err := RefreshSessionID(shares[0].Public(), nonce)
	if err != nil {
		return nil, fmt.Errorf("dkg: %w", err)
	}
	parties := partyIDs(shares[0].Public().IDs())
	out := make([]*round.Session, 0, len(shares))
	for _, sh := range shares {
		r, err := NewRefresh(sid, sh)
		if err != nil {
			return nil, err
		}
		s, err := round.NewSession(sid, round.PartyID(sh.ID()), parties, r)
		if err != nil {
			return nil, fmt.Errorf("dkg: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

func partyIDs(ids []uint16) []round.PartyID {
	out := make([]round.PartyID, len(ids))
	for i, id := range ids {
		out[i] = round.PartyID(id)
	}
	return out
}

// evalCommitments returns Σ_k x^k·C_k for the commitment vector C starting
// at coefficient index first (C_0 is the identity when first is 1), by
// Horner's rule.
func evalCommitments(cs []group.Element, x round.PartyID) group.Element {
	xs := g.NewScalar().SetUint64(uint64(x))
	acc := g.Identity()
	for k := len(cs) - 1; k >= 0; k-- {
		acc.Mul(acc, xs)
		acc.Add(acc, cs[k])
	}
	return acc
}

// evalPoly returns Σ_k x^k·a_k for coefficients a starting at index 0.
func evalPoly(a []group.Scalar, x round.PartyID) group.Scalar {
	xs := g.NewScalar().SetUint64(uint64(x))
	acc := g.NewScalar()
	for k := len(a) - 1; k >= 0; k-- {
		acc.Mul(acc, xs)
		acc.Add(acc, a[k])
	}
	return acc
}
