// Package keygen is distributed key generation, refresh and resharing for
// keymesh's DKLs23 threshold ECDSA (Doerner, Kondi, Lee, shelat, "Threshold
// ECDSA in Three Rounds", IACR ePrint 2023/765).
//
// All three are one protocol in which a set of dealers each deal a Feldman
// verifiable secret sharing (P. Feldman, FOCS 1987) of a degree t'−1
// polynomial g_i to the receiving parties, who add what they receive:
//
//   - key generation: every party deals a polynomial with a random constant
//     term, and the key is the sum of the constant terms. To stop a party
//     choosing its contribution after seeing the others' (the "rogue key"
//     bias), the commitment vectors are committed to by hash first and
//     opened only once every commitment is in, and each dealer proves
//     knowledge of its constant term with a Schnorr proof (package dlog)
//     bound to the session and the dealer;
//   - resharing from a t-of-n key to a t'-of-n' set: t or more old parties
//     (the dealers S) each deal g_i with g_i(0) = λ_i^S·x_i, its
//     Lagrange-weighted old share; everyone checks g_i(0)·G = λ_i^S·X_i
//     against the old public shares, so the public key stays the same;
//   - refresh: resharing from all n parties to the same n parties with the
//     same threshold. New shares lie on a fresh random polynomial, so an old
//     share no longer combines with new ones.
//
// Alongside, every ordered pair of receiving parties runs the random-VOLE
// setup of package rvole (the pairwise base OTs that DKLs23 signing's
// two-party multiplications need, DKLs23 §3), and every pair agrees on a
// seed for the zero-sharing functionality F_Zero that signing uses to
// re-randomise additive shares. A refresh or resharing replaces all of them,
// so OT correlations are never reused across share generations.
//
// Rounds (round k consumes what round k−1 sent). Every run starts with
// round.Fresh's contribution exchange: each party broadcasts 32 fresh random
// bytes, and the rounds below run under sid* = H(base session ID,
// contributions), one engine round later (round k is engine round k+1), so
// that no coordinator can make a party run the same key generation,
// refresh or resharing twice by repeating a nonce. sid* is also the
// generation of the new shares.
//
//	1: dealers sample g_i, commit V_i = H(sid, i, salt, C_i) to the vector
//	   C_i = (g_i,0·G, …, g_i,t'−1·G) (broadcast); receivers send each other
//	   the first rvole setup message and a seed contribution (direct).
//	2: dealers open C_i with a proof of knowledge of g_i(0) (broadcast) and
//	   send g_i(j) to each receiver j; receivers answer the rvole setup.
//	3: everyone checks openings, proofs, the length of every C_i and
//	   g_j(i)·G = Σ_k i^k·C_j,k; receivers finish the rvole setups and sum
//	   their shares; everyone broadcasts a digest of the public result and
//	   sends each receiver a tag confirming their pairwise seed (direct).
//	4: everyone checks that every digest and tag equals its own and outputs.
//
// A failed check aborts naming the party whose message failed, with one
// exception inherited from the base OT (package baseot, Chou–Orlandi with
// the sender's proof of knowledge): the base-OT receiver's points A_i must
// hide its choice bits, so the other party cannot check them, and a party
// that sends a valid point other than the one it computed is not caught
// here. It holds no valid key for that column, which harms only itself; the
// first signing with that peer aborts (the cheater's own OT-extension check
// fails, and it names the honest peer) and never outputs a signature
// (TestKeygenSubstitutedBaseOTPointNeverSigns). An abort is a claim by the
// party that reports it: the node should not act on one party's accusation
// of another. Direct
// messages carry secret shares and seeds: the transport must keep them
// confidential (mutually authenticated TLS between nodes).
//
// The output of a receiving party is a *dkls23.Share; a dealer that is not in
// the new set outputs *Departed. A new share from a refresh or resharing
// keeps every refusal of the party's old share (dkls23.Share.Refuse) whose
// peer is still in the new set: re-keyed OT setups do not make a peer that
// was caught probing them honest. Every run wipes its secrets when it ends
// (the dealt polynomial, the shares dealt to us, the seeds, and on an abort
// the new rvole setups and share); the caller zeroes the old share
// (dkls23.Share.Zero) once every party has stored its new one.
package keygen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Protocol names, hashed into session IDs.
const (
	ProtocolKeygen  = "keymesh/dkls23/keygen/v1"
	ProtocolReshare = "keymesh/dkls23/reshare/v1"
)

// Departed is the output of a party that dealt in a resharing but holds no
// share of the new set. It should delete its old share.
type Departed struct {
	PublicKey []byte // compressed SEC1
}

// config is what every round of one party needs.
type config struct {
	// sid is sid*, the fresh session ID of round.Fresh (the base ID with
	// every party's own contribution mixed in), set before round 1 runs.
	// It is also the generation of the output share.
	sid       round.SessionID
	self      round.PartyID
	all       []round.PartyID // sorted: dealers ∪ receivers
	dealers   []round.PartyID // sorted
	receivers []round.PartyID // sorted
	threshold int             // t' of the new sharing
	rand      io.Reader
	keyID     []byte // nil for key generation
	oldPublic *secp256k1.JacobianPoint
	oldShares map[round.PartyID]*secp256k1.JacobianPoint // dealers' old public shares
	old       *dkls23.Share                              // our old share if we deal in a resharing
	// testingOnlySecret, when set, replaces the old secret share in the
	// dealing (tests of a cheating dealer).
	testingOnlySecret *secp256k1.ModNScalar
	// testingOnlyOpening, when set, replaces this dealer's salt, commitment
	// vector and proof (tests of a dealer replaying an old opening).
	testingOnlyOpening [][]byte
	isKeygen           bool
	protocol           string
	// testingOnlyTrace, when set (internal tests), sees every round this
	// party builds, so a test can inspect its secrets after the run.
	testingOnlyTrace func(round.Round)
}

func (c *config) trace(r round.Round) {
	if c.testingOnlyTrace != nil {
		c.testingOnlyTrace(r)
	}
}

func (c *config) isDealer(p round.PartyID) bool   { return contains(c.dealers, p) }
func (c *config) isReceiver(p round.PartyID) bool { return contains(c.receivers, p) }

func contains(ps []round.PartyID, p round.PartyID) bool {
	_, ok := slices.BinarySearch(ps, p)
	return ok
}

func checkSet(ps []round.PartyID, what string) ([]round.PartyID, error) {
	s, err := round.SortParties(ps)
	if err != nil {
		return nil, fmt.Errorf("keygen: %s: %w", what, err)
	}
	if len(s) > dkls23.MaxParties {
		return nil, fmt.Errorf("keygen: %s: %d parties, at most %d", what, len(s), dkls23.MaxParties)
	}
	return s, nil
}

// NewSession returns party self's session of a t-of-n key generation among
// parties (n = len(parties), 2 ≤ t ≤ n ≤ 16). Every party must call it with
// the same parties, threshold and nonce (at least 16 bytes, fresh for every
// run, chosen by whoever starts the run); rand supplies this party's
// randomness (crypto/rand.Reader in production). The session's output is a
// *dkls23.Share.
func NewSession(self round.PartyID, parties []round.PartyID, threshold int, nonce []byte, rand io.Reader) (*round.Session, error) {
	ps, err := checkSet(parties, "parties")
	if err != nil {
		return nil, err
	}
	if threshold < dkls23.MinThreshold || threshold > len(ps) {
		return nil, fmt.Errorf("keygen: threshold %d for %d parties", threshold, len(ps))
	}
	sid, err := round.NewSessionID(ProtocolKeygen, ps, threshold, nonce)
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	c := &config{
		self: self, all: ps, dealers: ps, receivers: ps, threshold: threshold,
		rand: rand, isKeygen: true, protocol: ProtocolKeygen,
	}
	return c.session(sid)
}

// session builds the round.Session of c under base ID sid: a contribution
// exchange first (round.Fresh), then round 1 under sid*.
func (c *config) session(sid round.SessionID) (*round.Session, error) {
	s, err := round.NewFreshSession(sid, c.self, c.all, c.rand, func(fresh round.SessionID) (round.Round, error) {
		c.sid = fresh
		return &round1{config: c}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("keygen: %w", err)
	}
	return s, nil
}

// NewRefreshSession returns the session of a proactive refresh of share:
// all n parties of the key take part, with the same threshold, and each
// gets a new share of the same key, new random-VOLE setups and new
// zero-sharing seeds. The nonce is as for NewSession. The output is a
// *dkls23.Share; the old share must be deleted once every party has stored
// its new one.
func NewRefreshSession(share *dkls23.Share, nonce []byte, rand io.Reader) (*round.Session, error) {
	return NewReshareSession(ReshareConfig{
		Self:         share.Self(),
		Old:          share,
		Dealers:      share.Parties(),
		NewParties:   share.Parties(),
		NewThreshold: share.Threshold(),
		Nonce:        nonce,
	}, rand)
}

// ReshareConfig describes one party's part in a resharing.
type ReshareConfig struct {
	Self round.PartyID
	// Old is this party's share of the key, or nil for a party that joins
	// the new set without one.
	Old *dkls23.Share
	// PublicKey and OldPublicShares (X_i for every dealer i) are needed only
	// when Old is nil; they are public and come from an existing share
	// record. They are bound into the session ID, so a party given wrong
	// values never talks to the others.
	PublicKey       *secp256k1.JacobianPoint
	OldPublicShares map[round.PartyID]*secp256k1.JacobianPoint
	// Dealers are the old parties that deal: at least the old threshold of
	// them, each holding a share.
	Dealers []round.PartyID
	// NewParties and NewThreshold describe the new sharing
	// (2 ≤ t' ≤ n' ≤ 16).
	NewParties   []round.PartyID
	NewThreshold int
	// Nonce is fresh per run and the same at every party (≥ 16 bytes).
	Nonce []byte
}

// NewReshareSession returns the session of a resharing of a key to a new
// party set and threshold (see the package doc). The output is a
// *dkls23.Share for a party in NewParties, *Departed for the others.
func NewReshareSession(cfg ReshareConfig, rand io.Reader) (*round.Session, error) {
	c, sid, err := newReshareConfig(cfg, rand)
	if err != nil {
		return nil, err
	}
	return c.session(sid)
}

// newReshareConfig checks cfg and returns the config and the base session
// ID.
func newReshareConfig(cfg ReshareConfig, rand io.Reader) (*config, round.SessionID, error) {
	dealers, err := checkSet(cfg.Dealers, "dealers")
	if err != nil {
		return nil, round.SessionID{}, err
	}
	receivers, err := checkSet(cfg.NewParties, "new parties")
	if err != nil {
		return nil, round.SessionID{}, err
	}
	if cfg.NewThreshold < dkls23.MinThreshold || cfg.NewThreshold > len(receivers) {
		return nil, round.SessionID{}, fmt.Errorf("keygen: threshold %d for %d parties", cfg.NewThreshold, len(receivers))
	}
	union := append(slices.Clone(dealers), receivers...)
	slices.Sort(union)
	all, err := checkSet(slices.Compact(union), "all parties")
	if err != nil {
		return nil, round.SessionID{}, err
	}
	c := &config{
		self: cfg.Self, all: all, dealers: dealers, receivers: receivers, threshold: cfg.NewThreshold,
		rand: rand, protocol: ProtocolReshare, oldShares: map[round.PartyID]*secp256k1.JacobianPoint{},
	}
	if cfg.Old != nil {
		if cfg.Old.Self() != cfg.Self {
			return nil, round.SessionID{}, fmt.Errorf("keygen: the old share belongs to %v, not %v", cfg.Old.Self(), cfg.Self)
		}
		if len(dealers) < cfg.Old.Threshold() {
			return nil, round.SessionID{}, fmt.Errorf("keygen: %d dealers for a threshold of %d", len(dealers), cfg.Old.Threshold())
		}
		c.oldPublic = cfg.Old.PublicKey()
		for _, d := range dealers {
			x, err := cfg.Old.PublicShare(d)
			if err != nil {
				return nil, round.SessionID{}, fmt.Errorf("keygen: dealer %v: %w", d, err)
			}
			c.oldShares[d] = x
		}
		c.old = cfg.Old
	} else {
		if contains(dealers, cfg.Self) {
			return nil, round.SessionID{}, fmt.Errorf("keygen: %v deals but has no old share", cfg.Self)
		}
		if cfg.PublicKey == nil || curve.IsIdentity(cfg.PublicKey) {
			return nil, round.SessionID{}, errors.New("keygen: a joining party needs the public key")
		}
		var pk secp256k1.JacobianPoint
		pk.Set(cfg.PublicKey)
		pk.ToAffine()
		c.oldPublic = &pk
		for _, d := range dealers {
			x := cfg.OldPublicShares[d]
			if x == nil || curve.IsIdentity(x) {
				return nil, round.SessionID{}, fmt.Errorf("keygen: no old public share for dealer %v", d)
			}
			var q secp256k1.JacobianPoint
			q.Set(x)
			q.ToAffine()
			c.oldShares[d] = &q
		}
		// With fewer dealers than the old threshold the public key would
		// not be reached; the check that the dealt constants sum to the
		// public key catches it (round 3).
	}
	c.keyID = dkls23.KeyID(c.oldPublic)
	// Bind the key, the roles and the dealers' old public shares into the
	// session ID.
	ctx := []byte{}
	ctx = dkls23.AppendField(ctx, encodeParties(dealers))
	ctx = dkls23.AppendField(ctx, encodeParties(receivers))
	for _, d := range dealers {
		ctx = append(ctx, curve.EncodePoint(c.oldShares[d])...)
	}
	sid, err := round.NewSessionID(ProtocolReshare, all, cfg.NewThreshold, cfg.Nonce, c.keyID, ctx)
	if err != nil {
		return nil, round.SessionID{}, fmt.Errorf("keygen: %w", err)
	}
	return c, sid, nil
}

func encodeParties(ps []round.PartyID) []byte {
	b := make([]byte, 0, 2*len(ps))
	for _, p := range ps {
		b = binary.BigEndian.AppendUint16(b, uint16(p))
	}
	return b
}

// pairSID is the session ID of the rvole setup in which alice is Alice and
// bob is Bob.
func (c *config) pairSID(alice, bob round.PartyID) []byte {
	t := round.NewTranscript("keymesh/dkls23/keygen/vole-setup")
	t.WriteBytes(c.sid[:])
	t.WriteUint64(uint64(alice))
	t.WriteUint64(uint64(bob))
	return t.Sum(nil)
}

// proofContext binds a dealer's proof of knowledge to the session, the
// dealer and the key.
func (c *config) proofContext(dealer round.PartyID) []byte {
	t := round.NewTranscript("keymesh/dkls23/keygen/dlog")
	t.WriteBytes(c.sid[:])
	t.WriteUint64(uint64(dealer))
	t.WriteBytes(c.keyID)
	return t.Sum(nil)
}

// commitment is V_i = H(sid, i, salt, C_i).
func (c *config) commitment(dealer round.PartyID, salt []byte, coeffs [][]byte) []byte {
	t := round.NewTranscript("keymesh/dkls23/keygen/commit")
	t.WriteBytes(c.sid[:])
	t.WriteUint64(uint64(dealer))
	t.WriteBytes(salt)
	t.WriteUint64(uint64(len(coeffs)))
	for _, p := range coeffs {
		t.WriteBytes(p)
	}
	return t.Sum(nil)
}

// seed combines the two contributions of a pair into the F_Zero seed.
func (c *config) seed(a, b round.PartyID, sa, sb []byte) [dkls23.SeedLen]byte {
	if a > b {
		a, b, sa, sb = b, a, sb, sa
	}
	t := round.NewTranscript("keymesh/dkls23/keygen/zero-seed")
	t.WriteBytes(c.sid[:])
	t.WriteUint64(uint64(a))
	t.WriteUint64(uint64(b))
	t.WriteBytes(sa)
	t.WriteBytes(sb)
	var out [dkls23.SeedLen]byte
	copy(out[:], t.Sum(nil))
	return out
}
