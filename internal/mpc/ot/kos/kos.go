// Package kos is 1-out-of-2 random OT extension with malicious security:
// the protocol of Keller, Orsini and Scholl, "Actively Secure OT Extension
// with Optimal Overhead" (CRYPTO 2015; ePrint 2015/546, revised 2022), with
// the corrected consistency check of the revised paper, §4 / Figure 10,
// made non-interactive by Fiat–Shamir as in Doerner, Kondi, Lee and shelat
// (DKLs19, ePrint 2019/523, §6 / Protocol 9): the check weights χ_b are a
// hash of the session ID and the receiver's whole matrix, so the receiver
// sends its matrix and its check values in one message.
//
// Why the check changed: the original check (Figure 7 of the 2015 paper:
// one GF(2^κ) combination of the rows, compared against x·Δ) rests on a
// lemma (Lemma 1) that Roy showed false ("SoftSpokenOT: Quieter OT Extension
// from Small-Field Silent VOLE in the Minicrypt Model", CRYPTO 2022, ePrint
// 2022/192, Appendix D, with an attack). The revised paper replaces it by a
// check based on SoftSpokenOT's, in effect its k = 1 case (one base OT per
// column):
// every column of the matrix is checked on its own, so that a receiver who
// uses different choice vectors in different columns is caught unless it
// guesses the Δ_i of every column it deviates in.
//
// Why KOS and not SoftSpokenOT (Roy 2022) with k > 1: in DKLs23 signing the
// OT extension message is small next to the VOLE message that rides on it
// (for 416 OTs, 12 KB here against 40 KB of scalars in package rvole), so
// SoftSpokenOT's saving on this message (a factor k) buys little, while its
// CPU cost grows as 2^k/k and it would change what every stored setup holds.
//
// Roles: the sender (in DKLs23, Alice) holds Δ ∈ {0,1}^κ and, from the base
// OTs (package baseot, in which she is the receiver with choice bits Δ), the
// seeds s_i = k_i^{Δ_i}; the receiver (Bob, base-OT sender) holds k_i^0 and
// k_i^1. One setup serves any number of extensions, each under its own sid.
//
// Extension of m OTs (one message, receiver to sender). Parameters κ = 128
// base OTs and s = Sigma = 128, the width of the check's blocks; ℓ' = s·(n +
// 1) with n = ⌈m/s⌉: the caller's m OTs, random padding up to a multiple of
// s ("assume that s | ℓ"), and one more block of s OTs sacrificed to mask
// the check. Vectors of ℓ' bits are read as n + 1 blocks of 128 bits, each
// an element of GF(2^128) = GF(2)[X]/(X^128 + X^7 + X^2 + X + 1) (bit k of
// a block, little endian, is the coefficient of X^k); for weights χ_0 …
// χ_{n−1} ∈ GF(2^128), R(v) = Σ_{b<n} χ_b·v_b + v_n.
//
//  1. Receiver: choice bits r ∈ {0,1}^{ℓ'} (the caller's m bits, then random
//     bits); columns t^i = G(sid, i, k_i^0), u^i = t^i ⊕ G(sid, i, k_i^1) ⊕ r
//     for i < κ.
//  2. Check weights (Fig. 10, "Consistency check", 1): χ_b = H(sid, u).
//  3. Receiver (Fig. 10, 2): x = R(r) and, for every i < κ, t̃^i = R(t^i).
//     Sends (u, x, t̃^0 … t̃^{κ−1}).
//  4. Sender: q^i = G(sid, i, s_i) ⊕ Δ_i·u^i, so that q^i = t^i ⊕ Δ_i·r;
//     (Fig. 10, 3) checks R(q^i) = t̃^i ⊕ Δ_i·x for every i, else aborts
//     (ErrCheck).
//  5. Transpose and randomise (Fig. 10): rows q_j (bit i of q_j is bit j of
//     q^i) and t_j; outputs for j < m: sender v_j^0 = H(sid, j, q_j), v_j^1 =
//     H(sid, j, q_j ⊕ Δ); receiver v_j^{r_j} = H(sid, j, t_j). The padding and
//     mask rows are dropped.
//
// Security level. Computational κ = 128: 128 base OTs (Δ has 128 bits), a
// PRG and output hash built on AES-256, SHA-256 and cSHAKE256 (random
// oracle for χ and the output hash). Statistical s = 128: x is masked by the
// mask block r_n, which is uniform and never output, and t̃^i = R(q^i) ⊕
// Δ_i·x is something the sender can compute, so the message shows the sender
// nothing about r. Against a receiver whose effective choice vector differs
// between columns (r^i = u^i ⊕ G(k_i^0) ⊕ G(k_i^1)), the check on column i
// passes only if t̃^i ⊕ R(t^i) = Δ_i·(x ⊕ R(r^i)): every column with R(r^i) ≠
// x costs the receiver a guess of Δ_i (probability 1/2 each; a pass reveals
// the guessed bits, the leakage KOS's functionality allows, and a failure is
// an abort that the caller must turn into a refusal of the peer). Two
// columns with r^i ≠ r^j both pass unguessed only if R(r^i ⊕ r^j) = 0, which
// for fixed u has probability 2^-128 over χ (a nonzero block times a uniform
// χ_b is uniform; a difference only in the mask block never vanishes); over
// the at most C(κ, 2) < 2^13 pairs of columns, at most 2^-115 per χ. With
// Fiat–Shamir a receiver can try many u: one making Q queries to the hash
// that gives χ succeeds with probability at most Q·2^-115, so the check is
// 115-bit secure against such grinding (the union bound is loose: with no
// Δ bits known, classes other than the colliding pair must be guessed too).
//
// What we could and could not confirm: we did not have the text of the
// revised paper. The check above is Figure 10 as three public
// implementations describe it, step by step with the figure's numbering
// (libOTe's "new kos check", CryProt's "New kos consistency check", mpz's
// "implement a fixed KOS check": column-wise R over GF(2^128), s = 128, one
// sacrificed block of s rows, s | ℓ), written here from that description;
// the bound above is our own derivation for this check and this Fiat–Shamir
// instantiation, not the theorem of the revised paper, whose constants we
// could not read. Lemma 1, Appendix D and the section and figure numbers
// come from those implementations and the public issue threads that led to
// them (GaloisInc/swanky#33, osu-crypto/libOTe#167), not from the papers'
// text. The paper's figure samples χ interactively (libOTe also offers
// Fiat–Shamir); as in DKLs19 we hash the receiver's matrix instead.
//
// The check is computed column by column, before the transposition, on
// products reduced in GF(2^128) (X^128 + X^7 + X^2 + X + 1; a field is
// needed, so that a nonzero block times a uniform weight is uniform). As KOS
// note, a receiver that flips bit j of column i of u goes unnoticed exactly
// when Δ_i = 0, in which case the flip changes nothing for the sender; when
// Δ_i = 1 the check fails. An abort therefore leaks a bit of Δ to a cheating
// receiver, which is why the caller must refuse a peer after one failed
// check and re-run the setup (refresh).
//
// The sid of every extension must be unique per setup: extending twice under
// the same sid with different choice bits would reveal Δ. G is AES-256-CTR
// keyed by the seed, from the counter block SHA-256(prefix ‖ column), the
// prefix a cSHAKE256 hash of sid; H is the tweakable correlation-robust hash π(π(x) ⊕ tweak) ⊕ π(x)
// of Guo–Katz–Wang–Yu (S&P 2020) with π = AES-256 under a key hashed from
// sid; χ is AES-CTR output under a key hashed from sid and u.
//
// Secrets: the sender's outputs refer to the setup's Δ rather than copy it;
// Wipe clears an output's rows. Temporary copies of Δ, seeds, choice bits and
// matrices are cleared on every return path. The AES key schedules that a
// setup caches cannot be cleared (crypto/aes offers no way to): they are
// dropped with the setup.
package kos

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/keymesh/keymesh/internal/mpc/ot/baseot"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

const (
	// Kappa is κ, the number of base OTs and the width of the matrix rows.
	Kappa = 128
	// Sigma is s, the statistical security parameter of the consistency
	// check: the width of its blocks (it works in GF(2^s)) and the number
	// of extra OTs sacrificed to mask it.
	Sigma = 128
	// MaxM bounds the number of OTs in one extension.
	MaxM = 1 << 16
	// SeedLen is the length of each base-OT seed.
	SeedLen = baseot.KeyLen
	// SenderSetupLen and ReceiverSetupLen are the lengths of the setups'
	// encodings.
	SenderSetupLen   = Kappa/8 + Kappa*SeedLen
	ReceiverSetupLen = 2 * Kappa * SeedLen
)

// checkLen is the length of the check values in the receiver's message: x,
// then t̃^i for every base OT i, 16 bytes each.
const checkLen = 16 + Kappa*16

// ErrCheck is wrapped by every error that proves the peer deviated: a
// failed consistency check or a malformed message.
var ErrCheck = errors.New("kos: peer cheated")

// SenderSetup is the sender's long-term secret: Δ and the seeds k_i^{Δ_i}.
// It has no String method and no exported fields.
type SenderSetup struct {
	delta [2]uint64
	seeds [Kappa][SeedLen]byte

	// cache holds the AES key schedules of the seeds, built on first use;
	// copies of a setup share it (they hold the same seeds).
	cache *senderCache
}

type senderCache struct {
	once sync.Once
	blks [Kappa]cipher.Block
}

// ReceiverSetup is the receiver's long-term secret: both seeds of every base
// OT. It has no String method and no exported fields.
type ReceiverSetup struct {
	seeds [2][Kappa][SeedLen]byte

	// cache holds the AES key schedules of the seeds, built on first use;
	// copies of a setup share it (they hold the same seeds).
	cache *receiverCache
}

type receiverCache struct {
	once sync.Once
	blks [2][Kappa]cipher.Block
}

func newBlock(key *[SeedLen]byte) cipher.Block {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		panic("kos: " + err.Error()) // unreachable: the key is 32 bytes
	}
	return b
}

// blocks returns the key schedules of the seeds, computed once.
func (r *ReceiverSetup) blocks() *[2][Kappa]cipher.Block {
	c := r.cache
	if c == nil { // a setup not made by this package: no cache to fill
		c = new(receiverCache)
	}
	c.once.Do(func() {
		for h := range 2 {
			for i := range Kappa {
				c.blks[h][i] = newBlock(&r.seeds[h][i])
			}
		}
	})
	return &c.blks
}

// blocks returns the key schedules of the seeds, computed once.
func (s *SenderSetup) blocks() *[Kappa]cipher.Block {
	c := s.cache
	if c == nil {
		c = new(senderCache)
	}
	c.once.Do(func() {
		for i := range Kappa {
			c.blks[i] = newBlock(&s.seeds[i])
		}
	})
	return &c.blks
}

// ReceiverSetupState is the receiver's state between its base-OT message
// and Finish.
type ReceiverSetupState struct {
	ot *baseot.Sender
}

// NewReceiverSetup starts the setup; the receiver is the base-OT sender.
// It returns the message for the sender.
func NewReceiverSetup(sid []byte, rand io.Reader) (*ReceiverSetupState, []byte, error) {
	ot, msg, err := baseot.NewSender(baseSID(sid), Kappa, rand)
	if err != nil {
		return nil, nil, fmt.Errorf("kos: %w", err)
	}
	return &ReceiverSetupState{ot: ot}, msg, nil
}

// NewSenderSetup samples Δ, runs the base OTs as their receiver with choice
// bits Δ and returns the sender's setup and the message for the receiver.
// An error wrapping ErrCheck blames the receiver.
func NewSenderSetup(sid []byte, msg1 []byte, rand io.Reader) (*SenderSetup, []byte, error) {
	s := &SenderSetup{cache: new(senderCache)}
	var db [16]byte
	if _, err := io.ReadFull(rand, db[:]); err != nil {
		clear(db[:])
		return nil, nil, fmt.Errorf("kos: reading randomness: %w", err)
	}
	s.delta[0] = binary.LittleEndian.Uint64(db[:8])
	s.delta[1] = binary.LittleEndian.Uint64(db[8:])
	clear(db[:])
	if s.delta[0]|s.delta[1] == 0 { // probability 2^-128: a broken source
		return nil, nil, errors.New("kos: randomness source returned zero Δ")
	}
	choices := make([]byte, Kappa)
	for i := range choices {
		choices[i] = byte(s.delta[i/64]>>(i%64)) & 1
	}
	out, msg2, err := baseot.Receive(baseSID(sid), choices, msg1, rand)
	clear(choices)
	if err != nil {
		s.delta = [2]uint64{}
		if errors.Is(err, baseot.ErrCheat) {
			return nil, nil, fmt.Errorf("%w: %w", ErrCheck, err)
		}
		return nil, nil, fmt.Errorf("kos: %w", err)
	}
	for i := range Kappa {
		k := out.Key(i)
		s.seeds[i] = *k
		*k = baseot.Key{} // the setup holds the only copy
	}
	return s, msg2, nil
}

// Finish completes the receiver's setup. An error wrapping ErrCheck blames
// the sender. Finish is one-shot.
func (st *ReceiverSetupState) Finish(msg2 []byte) (*ReceiverSetup, error) {
	out, err := st.ot.Finish(msg2)
	if err != nil {
		if errors.Is(err, baseot.ErrCheat) {
			return nil, fmt.Errorf("%w: %w", ErrCheck, err)
		}
		return nil, fmt.Errorf("kos: %w", err)
	}
	r := &ReceiverSetup{cache: new(receiverCache)}
	for i := range Kappa {
		k0, k1 := out.Keys(i)
		r.seeds[0][i], r.seeds[1][i] = *k0, *k1
		*k0, *k1 = baseot.Key{}, baseot.Key{} // the setup holds the only copy
	}
	return r, nil
}

func baseSID(sid []byte) []byte {
	t := round.NewTranscript("keymesh kos base ot v1")
	t.WriteBytes(sid)
	return t.Sum(nil)
}

// MarshalBinary returns Δ (16 bytes, little endian) then the 128 seeds.
// The result is secret: the caller clears it when done.
func (s *SenderSetup) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, SenderSetupLen)
	out = binary.LittleEndian.AppendUint64(out, s.delta[0])
	out = binary.LittleEndian.AppendUint64(out, s.delta[1])
	for i := range s.seeds {
		out = append(out, s.seeds[i][:]...)
	}
	return out, nil
}

// UnmarshalBinary parses the encoding of MarshalBinary; any other length,
// or Δ = 0 (which would make the sender's two pads equal), is an error and
// leaves s unchanged.
func (s *SenderSetup) UnmarshalBinary(b []byte) error {
	if len(b) != SenderSetupLen {
		return fmt.Errorf("kos: sender setup length %d, want %d", len(b), SenderSetupLen)
	}
	d0 := binary.LittleEndian.Uint64(b[:8])
	d1 := binary.LittleEndian.Uint64(b[8:16])
	if d0|d1 == 0 {
		return errors.New("kos: sender setup: Δ is zero")
	}
	s.cache = new(senderCache)
	s.delta = [2]uint64{d0, d1}
	for i := range s.seeds {
		copy(s.seeds[i][:], b[16+i*SeedLen:])
	}
	return nil
}

// MarshalBinary returns the seeds k_i^0 for every i, then k_i^1. The result
// is secret: the caller clears it when done.
func (r *ReceiverSetup) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, ReceiverSetupLen)
	for b := range 2 {
		for i := range Kappa {
			out = append(out, r.seeds[b][i][:]...)
		}
	}
	return out, nil
}

// UnmarshalBinary parses the encoding of MarshalBinary; any other length, or
// a base OT whose two seeds are equal, is an error and leaves r unchanged.
func (r *ReceiverSetup) UnmarshalBinary(b []byte) error {
	if len(b) != ReceiverSetupLen {
		return fmt.Errorf("kos: receiver setup length %d, want %d", len(b), ReceiverSetupLen)
	}
	for i := range Kappa {
		k0 := b[i*SeedLen : (i+1)*SeedLen]
		k1 := b[(Kappa+i)*SeedLen : (Kappa+i+1)*SeedLen]
		if subtle.ConstantTimeCompare(k0, k1) == 1 {
			return fmt.Errorf("kos: receiver setup: equal seeds in base OT %d", i)
		}
	}
	r.cache = new(receiverCache)
	for h := range 2 {
		for i := range Kappa {
			copy(r.seeds[h][i][:], b[(h*Kappa+i)*SeedLen:])
		}
	}
	return nil
}

// Equal reports in constant time whether s and o hold the same secret.
func (s *SenderSetup) Equal(o *SenderSetup) bool {
	a, _ := s.MarshalBinary()
	b, _ := o.MarshalBinary()
	eq := subtle.ConstantTimeCompare(a, b) == 1
	clear(a)
	clear(b)
	return eq
}

// Equal reports in constant time whether r and o hold the same secret.
func (r *ReceiverSetup) Equal(o *ReceiverSetup) bool {
	a, _ := r.MarshalBinary()
	b, _ := o.MarshalBinary()
	eq := subtle.ConstantTimeCompare(a, b) == 1
	clear(a)
	clear(b)
	return eq
}

// paddedLen returns ℓ' for m OTs — m rounded up to a multiple of Sigma, plus
// one mask block of Sigma rows — and its number of 64-bit words.
func paddedLen(m int) (int, int) {
	mp := Sigma * ((m+Sigma-1)/Sigma + 1)
	return mp, mp / 64
}

// MsgLen returns the length of the receiver's extension message for m OTs:
// the κ columns u^i of ℓ' bits, then x and t̃^0 … t̃^{κ−1}.
func MsgLen(m int) int {
	mp, _ := paddedLen(m)
	return Kappa*mp/8 + checkLen
}

// sessionKeys are the per-extension hash prefixes.
type sessionKeys struct {
	prg [32]byte     // column PRG
	pad cipher.Block // π of the output hash, AES-256 keyed by sid
	// scratch holds padInto's blocks (x, π(x), π(x) ⊕ tweak), so that
	// they do not escape to the heap on every call. It makes the outputs
	// of one extension unsafe for concurrent use.
	scratch [3][16]byte
}

func newSessionKeys(sid []byte) *sessionKeys {
	var k sessionKeys
	t := round.NewTranscript("keymesh kos prg v1")
	t.WriteBytes(sid)
	copy(k.prg[:], t.Sum(nil))
	t = round.NewTranscript("keymesh kos pad v1")
	t.WriteBytes(sid)
	var err error
	if k.pad, err = aes.NewCipher(t.Sum(nil)); err != nil {
		panic("kos: " + err.Error()) // unreachable: the key is 32 bytes
	}
	return &k
}

// expand fills col (nw words) with G(sid, i, seed): AES-256-CTR under the
// long-term key seed (its key schedule kept in blk), starting from the
// counter block H(sid, i) — a 128-bit hash, so the counter ranges of
// different sessions and columns overlap with negligible probability.
func (k *sessionKeys) expand(col []uint64, i int, blk cipher.Block) {
	var in [32 + 2]byte
	copy(in[:32], k.prg[:])
	binary.LittleEndian.PutUint16(in[32:], uint16(i))
	iv := sha256.Sum256(in[:])
	buf := make([]byte, 8*len(col))
	cipher.NewCTR(blk, iv[:aes.BlockSize]).XORKeyStream(buf, buf)
	for w := range col {
		col[w] = binary.LittleEndian.Uint64(buf[8*w:])
	}
	clear(buf)
}

// padInto fills out (a positive multiple of 16 bytes) with the output hash
// of OT j with row x: 16-byte blocks Ĥ(x, (j, i)) = π(π(x) ⊕ (j, i)) ⊕ π(x)
// for i = 0, 1, …, the tweakable correlation-robust hash of Guo, Katz,
// Wang and Yu, "Efficient and Secure Multiparty Computation from Fixed-Key
// Block Ciphers" (IEEE S&P 2020), §7.4, with π = AES-256 under a key hashed
// from sid (so pads of different sessions are independent). The tweak
// (j, i) is unique per block within a session.
func (k *sessionKeys) padInto(out []byte, j int, row [2]uint64) {
	x, px, b := &k.scratch[0], &k.scratch[1], &k.scratch[2]
	binary.LittleEndian.PutUint64(x[:8], row[0])
	binary.LittleEndian.PutUint64(x[8:], row[1])
	k.pad.Encrypt(px[:], x[:])
	for i := 0; 16*i < len(out); i++ {
		*b = *px
		binary.LittleEndian.PutUint32(b[0:4], binary.LittleEndian.Uint32(px[0:4])^uint32(j))
		binary.LittleEndian.PutUint32(b[4:8], binary.LittleEndian.Uint32(px[4:8])^uint32(i))
		o := out[16*i : 16*i+16]
		k.pad.Encrypt(o, b[:])
		subtle.XORBytes(o, o, px[:])
	}
	clear(k.scratch[:])
}

// chi derives the n check weights χ_0 … χ_{n−1} ∈ GF(2^128) (Fig. 10,
// "Consistency check", step 1, by Fiat–Shamir) from sid and u: a cSHAKE256
// transcript of sid and SHA-256(u) (SHA-256 is hardware-accelerated; u is
// 10 KB per multiplication) gives an AES-256 key, and AES-CTR under it gives
// χ. The domain is v2: the weights of the Figure 7 check (v1) were per row.
func chi(sid, u []byte, n int) [][2]uint64 {
	du := sha256.Sum256(u)
	t := round.NewTranscript("keymesh kos check v2")
	t.WriteBytes(sid)
	t.WriteBytes(du[:])
	key := t.Sum(nil)
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic("kos: " + err.Error()) // unreachable: the key is 32 bytes
	}
	b := make([]byte, 16*n)
	cipher.NewCTR(blk, make([]byte, aes.BlockSize)).XORKeyStream(b, b)
	c := make([][2]uint64, n)
	for j := range c {
		c[j][0] = binary.LittleEndian.Uint64(b[16*j:])
		c[j][1] = binary.LittleEndian.Uint64(b[16*j+8:])
	}
	return c
}

// ReceiverOutput holds, for each of the m OTs, the row t_j from which the
// receiver's pad v_j^{r_j} is derived.
type ReceiverOutput struct {
	keys *sessionKeys
	rows [][2]uint64
}

// Len returns m. A ReceiverOutput is not safe for concurrent use.
func (o *ReceiverOutput) Len() int { return len(o.rows) }

// Pad fills out with the receiver's pad of OT j, v_j^{r_j}. len(out) must be
// a positive multiple of 16.
func (o *ReceiverOutput) Pad(j int, out []byte) { o.keys.padInto(out, j, o.rows[j]) }

// Wipe zeroes the rows. The output is unusable afterwards (Len is 0).
func (o *ReceiverOutput) Wipe() {
	clear(o.rows)
	o.rows = nil
}

// SenderOutput holds, for each of the m OTs, the row q_j from which the
// sender's two pads are derived. It refers to the setup's Δ instead of
// holding a copy.
type SenderOutput struct {
	keys  *sessionKeys
	delta *[2]uint64 // the setup's
	rows  [][2]uint64
}

// Len returns m. A SenderOutput is not safe for concurrent use.
func (o *SenderOutput) Len() int { return len(o.rows) }

// Pads fills out0 and out1 with the sender's pads of OT j, v_j^0 and v_j^1.
// Their lengths must be positive multiples of 16. The setup the output came
// from must not have been zeroed (Pads panics if it was: the pads would
// otherwise be equal).
func (o *SenderOutput) Pads(j int, out0, out1 []byte) {
	d := *o.delta
	if d[0]|d[1] == 0 {
		panic("kos: SenderOutput used after its setup was zeroed")
	}
	q := o.rows[j]
	o.keys.padInto(out0, j, q)
	o.keys.padInto(out1, j, [2]uint64{q[0] ^ d[0], q[1] ^ d[1]})
	clear(d[:])
}

// Wipe zeroes the rows and drops the reference to Δ. The output is unusable
// afterwards (Len is 0).
func (o *SenderOutput) Wipe() {
	clear(o.rows)
	o.rows = nil
	o.delta = nil
}

// Extend runs the receiver's side of one extension of m = len(choices) OTs
// (each choice 0 or 1) under sid, and returns its output and the message for
// the sender. rand supplies the padding choice bits.
func (r *ReceiverSetup) Extend(sid []byte, choices []byte, rand io.Reader) (*ReceiverOutput, []byte, error) {
	return r.extend(sid, choices, rand, nil)
}

// extend is Extend with a hook for tests: testingOnlyTamper, if not nil,
// may change u before the receiver derives χ and its check values from it,
// which is what a cheating receiver does (its x and t̃ are still those of
// its honest r and t^i).
func (r *ReceiverSetup) extend(sid []byte, choices []byte, rand io.Reader, testingOnlyTamper func(u []byte, nw int)) (*ReceiverOutput, []byte, error) {
	m := len(choices)
	if m < 1 || m > MaxM {
		return nil, nil, fmt.Errorf("kos: %d OTs out of range", m)
	}
	mp, nw := paddedLen(m)
	// Choice bits r, packed; the padding and mask bits are random.
	rb := make([]byte, 8*nw)
	defer clear(rb)
	if _, err := io.ReadFull(rand, rb[m/8:]); err != nil {
		return nil, nil, fmt.Errorf("kos: reading randomness: %w", err)
	}
	rb[m/8] &^= byte(1)<<(m%8) - 1 // the caller's bits of that byte come below
	for j, c := range choices {
		if c > 1 {
			return nil, nil, fmt.Errorf("kos: choice %d is not a bit", j)
		}
		rb[j/8] |= c << (j % 8)
	}
	rw := make([]uint64, nw)
	defer clear(rw)
	for w := range rw {
		rw[w] = binary.LittleEndian.Uint64(rb[8*w:])
	}

	// Step 1: columns t^i and u^i.
	keys := newSessionKeys(sid)
	blks := r.blocks()
	var t [Kappa][]uint64
	defer func() {
		for i := range t {
			clear(t[i])
		}
	}()
	msg := make([]byte, 0, MsgLen(m))
	g1 := make([]uint64, nw)
	for i := range Kappa {
		t[i] = make([]uint64, nw)
		keys.expand(t[i], i, blks[0][i])
		keys.expand(g1, i, blks[1][i])
		for w := range nw {
			msg = binary.LittleEndian.AppendUint64(msg, t[i][w]^g1[w]^rw[w])
		}
	}
	clear(g1)
	u := msg[:Kappa*mp/8]
	if testingOnlyTamper != nil {
		testingOnlyTamper(u, nw)
	}

	// Steps 2 and 3: χ, x = R(r), t̃^i = R(t^i).
	ch := chi(sid, u, mp/Sigma-1)
	x := checkSum(rw, ch)
	msg = binary.LittleEndian.AppendUint64(msg, x[0])
	msg = binary.LittleEndian.AppendUint64(msg, x[1])
	for i := range Kappa {
		ti := checkSum(t[i], ch)
		msg = binary.LittleEndian.AppendUint64(msg, ti[0])
		msg = binary.LittleEndian.AppendUint64(msg, ti[1])
	}

	// Step 5: rows t_j; the padding and mask rows are dropped.
	rows := transpose(&t, nw)
	clear(rows[m:])
	return &ReceiverOutput{keys: keys, rows: rows[:m:m]}, msg, nil
}

// Extend runs the sender's side of one extension of m OTs under sid. An
// error wrapping ErrCheck (bad length, failed consistency check) blames the
// receiver. The output refers to s's Δ: s must outlive it, neither zeroed
// nor overwritten.
func (s *SenderSetup) Extend(sid []byte, m int, msg []byte) (*SenderOutput, error) {
	if m < 1 || m > MaxM {
		return nil, fmt.Errorf("kos: %d OTs out of range", m)
	}
	if len(msg) != MsgLen(m) {
		return nil, fmt.Errorf("%w: message length %d, want %d", ErrCheck, len(msg), MsgLen(m))
	}
	mp, nw := paddedLen(m)
	u := msg[:Kappa*mp/8]
	keys := newSessionKeys(sid)
	blks := s.blocks()

	// Step 4: q^i = G(s_i) ⊕ Δ_i·u^i.
	var q [Kappa][]uint64
	defer func() {
		for i := range q {
			clear(q[i])
		}
	}()
	for i := range Kappa {
		q[i] = make([]uint64, nw)
		keys.expand(q[i], i, blks[i])
		mask := -((s.delta[i/64] >> (i % 64)) & 1)
		for w := range nw {
			q[i][w] ^= mask & binary.LittleEndian.Uint64(u[(i*nw+w)*8:])
		}
	}

	// Fig. 10, step 3: R(q^i) = t̃^i ⊕ Δ_i·x for every i. The differences
	// are OR-ed together, so that which column failed stays secret (it
	// would tell a bit of Δ beyond the one the failure itself leaks).
	ch := chi(sid, u, mp/Sigma-1)
	rest := msg[len(u):]
	x := [2]uint64{binary.LittleEndian.Uint64(rest), binary.LittleEndian.Uint64(rest[8:])}
	var diff uint64
	for i := range Kappa {
		qi := checkSum(q[i], ch)
		mask := -((s.delta[i/64] >> (i % 64)) & 1)
		o := 16 + 16*i
		diff |= qi[0] ^ binary.LittleEndian.Uint64(rest[o:]) ^ mask&x[0]
		diff |= qi[1] ^ binary.LittleEndian.Uint64(rest[o+8:]) ^ mask&x[1]
	}
	if diff != 0 { // the outcome of the check is public
		return nil, fmt.Errorf("%w: consistency check failed", ErrCheck)
	}

	// Step 5: rows q_j; the padding and mask rows are dropped.
	rows := transpose(&q, nw)
	clear(rows[m:])
	return &SenderOutput{keys: keys, delta: &s.delta, rows: rows[:m:m]}, nil
}
