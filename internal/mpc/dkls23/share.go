package dkls23

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/codec"
	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// Limits on the party set: 2 ≤ t ≤ n ≤ MaxParties.
const (
	MinThreshold = 2
	MaxParties   = 16
	// SeedLen is the length of a pairwise zero-sharing seed.
	SeedLen = 32
	// GenerationLen is the length of a share generation (the session ID of
	// the key generation, refresh or resharing that produced it).
	GenerationLen = 32
)

// ErrInvalidShare is wrapped by every error of UnmarshalBinary and
// NewShare.
var ErrInvalidShare = errors.New("dkls23: invalid share")

// Peer is the pairwise state a party keeps for one other party: the two
// random-VOLE setups (this party as Alice, the peer as Bob; and the reverse)
// and the seed of F_Zero for the pair. It is secret: its fields are
// unexported, it never prints, and its seed compares in constant time.
type Peer struct {
	alice *rvole.AliceSetup
	bob   *rvole.BobSetup
	seed  [SeedLen]byte
	_     [0]func()
}

// NewPeer assembles the pairwise state for one peer; it copies the seed.
func NewPeer(alice *rvole.AliceSetup, bob *rvole.BobSetup, seed *[SeedLen]byte) *Peer {
	return &Peer{alice: alice, bob: bob, seed: *seed}
}

// Alice returns the random-VOLE setup in which this party is Alice.
func (p *Peer) Alice() *rvole.AliceSetup { return p.alice }

// Bob returns the random-VOLE setup in which this party is Bob.
func (p *Peer) Bob() *rvole.BobSetup { return p.bob }

// Seed returns a copy of the F_Zero seed of the pair. It is secret.
func (p *Peer) Seed() [SeedLen]byte { return p.seed }

// Equal reports, in constant time in the secrets, whether p and o hold the
// same pairwise state.
func (p *Peer) Equal(o *Peer) bool {
	return subtle.ConstantTimeCompare(p.seed[:], o.seed[:]) == 1 && p.alice.Equal(o.alice) && p.bob.Equal(o.bob)
}

// Share is one party's record of a t-of-n key: its Shamir share x_i = p(i)
// of the secret key sk = p(0), the public key pk = sk·G, every party's
// public share X_j = p(j)·G, and the pairwise state with every other party.
//
// A Share never prints its secrets: formatting it with any verb shows only
// the public parts. Its secret scalar is reachable only inside this module's
// protocols (SecretShare). Persist it with MarshalBinary, and protect the
// bytes (they are secret): the node seals them to the enclave.
type Share struct {
	threshold  int
	self       round.PartyID
	parties    []round.PartyID // sorted, includes self
	generation [GenerationLen]byte
	secret     secp256k1.ModNScalar
	public     secp256k1.JacobianPoint   // affine
	shares     []secp256k1.JacobianPoint // affine, in party order
	peers      map[round.PartyID]*Peer
	// refused holds the peers caught cheating. It is behind a pointer so
	// that every copy of the Share value shares one set: a refusal is
	// never lost to a stale copy.
	refused *refusals
	_       [0]func()
}

// refusals is a Share's set of refused peers, safe for concurrent use.
type refusals struct {
	mu  sync.Mutex
	set []round.PartyID // sorted
}

// NewShare assembles and checks a share record. It copies its inputs.
// publicShares are in the order of parties (sorted). peers must hold exactly
// one entry per other party. It checks what UnmarshalBinary checks.
func NewShare(threshold int, self round.PartyID, parties []round.PartyID, generation [GenerationLen]byte,
	secret *secp256k1.ModNScalar, public *secp256k1.JacobianPoint, publicShares []secp256k1.JacobianPoint,
	peers map[round.PartyID]*Peer) (*Share, error) {
	s := &Share{
		threshold:  threshold,
		self:       self,
		parties:    slices.Clone(parties),
		generation: generation,
		peers:      make(map[round.PartyID]*Peer, len(peers)),
		refused:    new(refusals),
	}
	s.secret.Set(secret)
	s.public.Set(public)
	s.public.ToAffine()
	for i := range publicShares {
		var p secp256k1.JacobianPoint
		p.Set(&publicShares[i])
		p.ToAffine()
		s.shares = append(s.shares, p)
	}
	for id, p := range peers {
		if p == nil || p.alice == nil || p.bob == nil {
			return nil, fmt.Errorf("%w: incomplete pairwise state for %v", ErrInvalidShare, id)
		}
		s.peers[id] = &Peer{alice: p.alice, bob: p.bob, seed: p.seed}
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// Threshold returns t.
func (s *Share) Threshold() int { return s.threshold }

// Self returns this party's ID.
func (s *Share) Self() round.PartyID { return s.self }

// Parties returns the sorted IDs of all n parties.
func (s *Share) Parties() []round.PartyID { return slices.Clone(s.parties) }

// Generation returns the session ID of the protocol run that produced this
// share; a refresh or resharing gives a new one.
func (s *Share) Generation() [GenerationLen]byte { return s.generation }

// PublicKey returns a copy of the public key (affine).
func (s *Share) PublicKey() *secp256k1.JacobianPoint {
	var p secp256k1.JacobianPoint
	p.Set(&s.public)
	return &p
}

// PublicKeyBytes returns the compressed SEC1 encoding of the public key.
func (s *Share) PublicKeyBytes() []byte { return curve.EncodePoint(&s.public) }

// KeyID returns the key's identifier, a hash of the public key. It is bound
// into every protocol transcript that uses the key.
func (s *Share) KeyID() []byte { return KeyID(&s.public) }

// KeyID hashes a public key into the key identifier.
func KeyID(pub *secp256k1.JacobianPoint) []byte {
	t := round.NewTranscript("keymesh/dkls23/key-id")
	t.WriteBytes(curve.EncodePoint(pub))
	return t.Sum(nil)
}

// PublicShare returns X_p = p(p)·G for party p.
func (s *Share) PublicShare(p round.PartyID) (*secp256k1.JacobianPoint, error) {
	i, ok := slices.BinarySearch(s.parties, p)
	if !ok {
		return nil, fmt.Errorf("dkls23: %v holds no share of this key", p)
	}
	var q secp256k1.JacobianPoint
	q.Set(&s.shares[i])
	return &q, nil
}

// SecretShare returns a copy of x_i. It is for the protocols of this module
// (keygen, sign); the caller must not print or log it and should Zero it
// when done.
func (s *Share) SecretShare() *secp256k1.ModNScalar {
	var x secp256k1.ModNScalar
	x.Set(&s.secret)
	return &x
}

// Peer returns the pairwise state for party p, or nil.
func (s *Share) Peer(p round.PartyID) *Peer { return s.peers[p] }

// Refuse records that peer p was caught cheating (a failed OT-extension
// consistency check or multiplication check, or any other check that named
// it). It takes effect at once: every signing session using this share,
// open or new, checks the refusal before it next uses its OT correlation
// with p and aborts with sign.ErrRefused (the signing session itself
// refuses a peer it catches). Reusing OT correlations with a peer that has
// seen a selective-abort outcome would leak bits of our OT secrets (Trail
// of Bits, "Don't overextend your Oblivious Transfer", 2023; about 128
// probes reveal Δ).
//
// Refuse is safe for concurrent use with every method of the share, and
// refusals only accumulate: refusing 2 and then 3 leaves both refused, and
// no copy of the share is needed (or wanted) to refuse. The refusals are
// part of the encoding (MarshalBinary), so they survive a restart once the
// caller persists the share; a refresh or resharing of the share keeps
// them (package keygen copies them to the new share).
func (s *Share) Refuse(p round.PartyID) error {
	if s.peers[p] == nil || s.refused == nil {
		return fmt.Errorf("dkls23: %v is not a peer", p)
	}
	s.refused.mu.Lock()
	defer s.refused.mu.Unlock()
	if i, found := slices.BinarySearch(s.refused.set, p); !found {
		s.refused.set = slices.Insert(slices.Clone(s.refused.set), i, p)
	}
	return nil
}

// Refused reports whether p has been refused. It is safe for concurrent
// use.
func (s *Share) Refused(p round.PartyID) bool {
	if s.refused == nil {
		return false
	}
	s.refused.mu.Lock()
	defer s.refused.mu.Unlock()
	_, found := slices.BinarySearch(s.refused.set, p)
	return found
}

// RefusedPeers returns the sorted refused peers. It is safe for concurrent
// use.
func (s *Share) RefusedPeers() []round.PartyID {
	if s.refused == nil {
		return nil
	}
	s.refused.mu.Lock()
	defer s.refused.mu.Unlock()
	return slices.Clone(s.refused.set)
}

// Zero overwrites the secret share, the zero-sharing seeds and the
// random-VOLE setups (OT-extension secrets) in place, for a share that has
// been replaced (by a refresh or resharing) or deleted. No session may use
// the share afterwards, nor while Zero runs.
func (s *Share) Zero() {
	s.secret.Zero()
	for id, p := range s.peers {
		clear(p.seed[:])
		if p.alice != nil {
			p.alice.Zero()
		}
		if p.bob != nil {
			p.bob.Zero()
		}
		p.alice, p.bob = nil, nil
		delete(s.peers, id)
	}
}

// Format prints only the public parts of the share, whatever the verb, so
// that no secret reaches a log through fmt.
// It has a value receiver so that a Share value, not only a pointer, is
// covered.
func (s Share) Format(f fmt.State, verb rune) {
	fmt.Fprintf(f, "dkls23.Share{%v, %d-of-%d, key %x}", s.self, s.threshold, len(s.parties), curve.EncodePoint(&s.public))
}

// Format prints a placeholder: the pairwise state is secret.
func (p Peer) Format(f fmt.State, verb rune) { fmt.Fprint(f, "dkls23.Peer(secret)") }

// check validates the invariants of a share: the encoding's decoder and
// NewShare both call it.
func (s *Share) check() error {
	n := len(s.parties)
	if n < MinThreshold || n > MaxParties {
		return fmt.Errorf("%w: %d parties, want %d to %d", ErrInvalidShare, n, MinThreshold, MaxParties)
	}
	if s.threshold < MinThreshold || s.threshold > n {
		return fmt.Errorf("%w: threshold %d for %d parties", ErrInvalidShare, s.threshold, n)
	}
	for i, p := range s.parties {
		if p == 0 || (i > 0 && s.parties[i-1] >= p) {
			return fmt.Errorf("%w: party list not sorted, distinct and non-zero", ErrInvalidShare)
		}
	}
	if !slices.Contains(s.parties, s.self) {
		return fmt.Errorf("%w: %v is not among the parties", ErrInvalidShare, s.self)
	}
	if len(s.shares) != n {
		return fmt.Errorf("%w: %d public shares for %d parties", ErrInvalidShare, len(s.shares), n)
	}
	if len(s.peers) != n-1 {
		return fmt.Errorf("%w: pairwise state for %d peers, want %d", ErrInvalidShare, len(s.peers), n-1)
	}
	for _, p := range s.parties {
		if p != s.self && s.peers[p] == nil {
			return fmt.Errorf("%w: no pairwise state for %v", ErrInvalidShare, p)
		}
	}
	if s.secret.IsZero() {
		return fmt.Errorf("%w: zero secret share", ErrInvalidShare)
	}
	if curve.IsIdentity(&s.public) {
		return fmt.Errorf("%w: public key is the identity", ErrInvalidShare)
	}
	for i := range s.shares {
		if curve.IsIdentity(&s.shares[i]) {
			return fmt.Errorf("%w: public share of %v is the identity", ErrInvalidShare, s.parties[i])
		}
	}
	// Our own public share must be x_i·G.
	var mine secp256k1.JacobianPoint
	curve.ScalarBaseMult(&s.secret, &mine)
	own, _ := slices.BinarySearch(s.parties, s.self)
	if !equalPoints(&mine, &s.shares[own]) {
		return fmt.Errorf("%w: secret share does not match the public share", ErrInvalidShare)
	}
	// The public shares must lie on one polynomial of degree t−1 whose value
	// at 0 is the public key: interpolate from the first t and compare the
	// rest.
	base := s.parties[:s.threshold]
	at := func(x round.PartyID) (*secp256k1.JacobianPoint, error) {
		return InterpolatePoints(base, s.shares[:s.threshold], x)
	}
	pk, err := at(0)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidShare, err)
	}
	if !equalPoints(pk, &s.public) {
		return fmt.Errorf("%w: public shares do not interpolate to the public key", ErrInvalidShare)
	}
	for i := s.threshold; i < n; i++ {
		q, err := at(s.parties[i])
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidShare, err)
		}
		if !equalPoints(q, &s.shares[i]) {
			return fmt.Errorf("%w: public share of %v is off the polynomial", ErrInvalidShare, s.parties[i])
		}
	}
	return nil
}

// InterpolatePoints returns F(x) for the polynomial F in the exponent of
// degree below len(xs) with F(xs[k]) = ys[k]. The points are public; the
// multiplications are variable time.
func InterpolatePoints(xs []round.PartyID, ys []secp256k1.JacobianPoint, x round.PartyID) (*secp256k1.JacobianPoint, error) {
	if len(xs) != len(ys) || len(xs) == 0 {
		return nil, errors.New("dkls23: interpolation needs as many values as points")
	}
	var acc secp256k1.JacobianPoint
	for k, xk := range xs {
		l, err := lagrangeAt(xs, xk, x)
		if err != nil {
			return nil, err
		}
		var term secp256k1.JacobianPoint
		secp256k1.ScalarMultNonConst(l, &ys[k], &term)
		secp256k1.AddNonConst(&acc, &term, &acc)
	}
	acc.ToAffine()
	return &acc, nil
}

// lagrangeAt returns the Lagrange basis polynomial of xs for self, at x.
func lagrangeAt(xs []round.PartyID, self, x round.PartyID) (*secp256k1.ModNScalar, error) {
	var num, den secp256k1.ModNScalar
	num.SetInt(1)
	den.SetInt(1)
	xi, xx := Scalar(self), Scalar(x)
	for _, j := range xs {
		if j == self {
			continue
		}
		xj := Scalar(j)
		var a, d secp256k1.ModNScalar
		a.NegateVal(&xj).Add(&xx) // x − x_j
		num.Mul(&a)
		d.NegateVal(&xj).Add(&xi) // x_i − x_j
		den.Mul(&d)
	}
	if den.IsZero() {
		return nil, errors.New("dkls23: repeated evaluation point")
	}
	den.InverseNonConst()
	return num.Mul(&den), nil
}

func equalPoints(a, b *secp256k1.JacobianPoint) bool {
	var p, q secp256k1.JacobianPoint
	p.Set(a)
	q.Set(b)
	p.ToAffine()
	q.ToAffine()
	return p.X.Equals(&q.X) && p.Y.Equals(&q.Y) && (p.Z.IsZero() == q.Z.IsZero())
}

// EqualPoints reports whether a and b are the same point (public data,
// variable time).
func EqualPoints(a, b *secp256k1.JacobianPoint) bool { return equalPoints(a, b) }

// Encoding of a share, version 1 (integers big-endian):
//
//	magic "KMDS" ‖ version(1)=1 ‖ t(1) ‖ n(1) ‖ self(2) ‖ generation(32) ‖
//	parties: n × id(2) ‖ public key(33) ‖ public shares: n × point(33) ‖
//	secret(32) ‖ for each other party, in order: seed(32) ‖
//	len(4) ‖ alice setup ‖ len(4) ‖ bob setup ‖
//	refused count(1) ‖ refused: count × id(2), sorted peers
//
// There is no checksum: integrity at rest is the sealing layer's job, and the
// decoder's consistency checks (secret against public share, public shares
// against the public key) catch most corruption.
const (
	shareMagic   = "KMDS"
	shareVersion = 1
	// maxSetupLen bounds one encoded random-VOLE setup.
	maxSetupLen = 1 << 20
)

// MarshalBinary encodes the share, with every refusal made before the call.
// The output is secret.
func (s *Share) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 512)
	b = append(b, shareMagic...)
	b = append(b, shareVersion, byte(s.threshold), byte(len(s.parties)))
	b = binary.BigEndian.AppendUint16(b, uint16(s.self))
	b = append(b, s.generation[:]...)
	for _, p := range s.parties {
		b = binary.BigEndian.AppendUint16(b, uint16(p))
	}
	b = append(b, curve.EncodePoint(&s.public)...)
	for i := range s.shares {
		b = append(b, curve.EncodePoint(&s.shares[i])...)
	}
	b = append(b, curve.EncodeScalar(&s.secret)...)
	for _, p := range s.parties {
		if p == s.self {
			continue
		}
		peer := s.peers[p]
		b = append(b, peer.seed[:]...)
		for _, m := range []interface{ MarshalBinary() ([]byte, error) }{peer.alice, peer.bob} {
			e, err := m.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("dkls23: encoding pairwise state for %v: %w", p, err)
			}
			if len(e) > maxSetupLen {
				return nil, fmt.Errorf("dkls23: pairwise state for %v of %d bytes", p, len(e))
			}
			b = codec.AppendVar(b, e)
		}
	}
	refused := s.RefusedPeers() // every refusal made before this call
	b = append(b, byte(len(refused)))
	for _, p := range refused {
		b = binary.BigEndian.AppendUint16(b, uint16(p))
	}
	return b, nil
}

// UnmarshalBinary decodes a share strictly: a wrong magic or version,
// wrong lengths, trailing bytes, unsorted or repeated party IDs, points that
// are not on the curve or are the identity, a zero or out-of-range secret,
// public shares that do not interpolate to the public key and a secret that
// does not match its public share are all errors wrapping
// ErrInvalidShare. On error s is unchanged.
func (s *Share) UnmarshalBinary(data []byte) error {
	r := codec.NewReader(data, ErrInvalidShare)
	r.Magic(shareMagic, "a share")
	if v := r.U8("version"); r.Err() == nil && v != shareVersion {
		r.Fail("unknown version %d", v)
	}
	out := Share{threshold: int(r.U8("threshold")), peers: map[round.PartyID]*Peer{}, refused: new(refusals)}
	n := int(r.U8("party count"))
	if r.Err() == nil && (n < MinThreshold || n > MaxParties) {
		r.Fail("%d parties", n)
	}
	if err := r.Err(); err != nil {
		return err
	}
	out.self = round.PartyID(r.U16("self"))
	copy(out.generation[:], r.Bytes(GenerationLen, "generation"))
	for range n {
		out.parties = append(out.parties, round.PartyID(r.U16("party id")))
	}
	public := r.Bytes(curve.PointLen, "public key")
	shares := r.Bytes(n*curve.PointLen, "public shares")
	secret := r.Bytes(curve.ScalarLen, "secret share")
	for _, p := range out.parties {
		if p == out.self {
			continue
		}
		if _, dup := out.peers[p]; dup {
			r.Fail("party %v repeated", p)
			break
		}
		peer := &Peer{alice: new(rvole.AliceSetup), bob: new(rvole.BobSetup)}
		copy(peer.seed[:], r.Bytes(SeedLen, "pairwise seed"))
		alice, bob := r.Var(maxSetupLen, "pairwise alice setup"), r.Var(maxSetupLen, "pairwise bob setup")
		if r.Err() != nil {
			break
		}
		if err := peer.alice.UnmarshalBinary(alice); err != nil {
			return fmt.Errorf("%w: pairwise state for %v: %w", ErrInvalidShare, p, err)
		}
		if err := peer.bob.UnmarshalBinary(bob); err != nil {
			return fmt.Errorf("%w: pairwise state for %v: %w", ErrInvalidShare, p, err)
		}
		out.peers[p] = peer
	}
	nr := int(r.U8("refused count"))
	for range nr {
		p := round.PartyID(r.U16("refused peer"))
		rs := out.refused.set
		if r.Err() != nil {
			break
		}
		if out.peers[p] == nil || (len(rs) > 0 && rs[len(rs)-1] >= p) {
			r.Fail("refused list is not sorted distinct peers")
			break
		}
		out.refused.set = append(rs, p)
	}
	if err := r.Done(); err != nil {
		return err
	}

	pk, err := curve.DecodePoint(public)
	if err != nil {
		return fmt.Errorf("%w: public key: %w", ErrInvalidShare, err)
	}
	out.public = *pk
	for i := range n {
		p, err := curve.DecodePoint(shares[i*curve.PointLen : (i+1)*curve.PointLen])
		if err != nil {
			return fmt.Errorf("%w: public share %d: %w", ErrInvalidShare, i, err)
		}
		out.shares = append(out.shares, *p)
	}
	x, err := curve.DecodeNonZeroScalar(secret)
	if err != nil {
		return fmt.Errorf("%w: secret share: %w", ErrInvalidShare, err)
	}
	out.secret = *x
	x.Zero()
	if err := out.check(); err != nil {
		return err
	}
	*s = out
	return nil
}
