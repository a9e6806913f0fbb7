// Package peer runs the keygen and signing of other Go threshold-ECDSA
// libraries ("peers") and of keymesh's DKLs23 behind one interface, so that
// they can be timed side by side on the same machine for the same (t, n).
//
// Every Protocol runs all of its parties in one process and passes their
// messages in memory, the way each library's own tests do, and times the
// whole protocol for all parties (wall clock, start of the first party to
// the output of the last), not one party's share of the work.
//
// Peers, pinned in go.mod:
//   - github.com/bnb-chain/tss-lib/v2 v2.0.2: GG18/GG20 with Paillier. Its
//     Paillier and Pedersen-modulus pre-parameters (safe primes) are not
//     part of the timed keygen: they come from the module's own test
//     fixtures, or are generated once per run (see TSSPreParams).
//   - github.com/taurusgroup/multi-party-sig v0.7.0-alpha-2025-01-28: CMP
//     (Canetti, Gennaro, Goldfeder, Makriyannis, Peled, CCS 2020) keygen and
//     full signing (not presigning), and its 2-of-2 Doerner (DKLs18)
//     protocol.
//   - github.com/coinbase/kryptology v1.8.0: DKLs18 2-of-2.
//
// Each Protocol's Sign signs a 32-byte digest and returns the signature,
// which the tests verify with decred's ecdsa against the key's public key.
package peer

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// ErrUnavailable is wrapped by Keygen and Sign of a protocol that cannot run
// in this build (a library that does not build, or keymesh's DKLs23 before
// it lands).
var ErrUnavailable = errors.New("peer: protocol not available")

// Key is the output of one keygen: every party's state, opaque to callers.
type Key interface {
	// PublicKey is the joint ECDSA public key.
	PublicKey() *secp256k1.PublicKey
}

// Protocol is one threshold-ECDSA implementation at one (t, n): any t of
// the n parties sign.
type Protocol interface {
	// Name names the library, its version and the protocol.
	Name() string
	// T and N are the signing threshold and the number of parties.
	T() int
	N() int
	// Note says what the timings include or leave out, or "".
	Note() string
	// Keygen runs distributed key generation for all n parties.
	Keygen() (Key, error)
	// Sign runs signing of digest (32 bytes) by the first t parties of k,
	// which must come from this Protocol's Keygen.
	Sign(k Key, digest []byte) (*Signature, error)
}

// Signature is a signature with the traffic that produced it.
type Signature struct {
	R, S secp256k1.ModNScalar
	// Bytes is the number of bytes all parties sent, counted as each
	// library encodes its messages (a broadcast counts once per recipient).
	Bytes int
}

// Verify reports whether s is a valid ECDSA signature of digest under pub.
func (s *Signature) Verify(digest []byte, pub *secp256k1.PublicKey) bool {
	return ecdsa.NewSignature(&s.R, &s.S).Verify(digest, pub)
}

// sigFromBytes builds a Signature from big-endian r and s of at most 32
// bytes each, rejecting zero and values >= the group order.
func sigFromBytes(r, s []byte) (*Signature, error) {
	var sig Signature
	if len(r) > 32 || len(s) > 32 {
		return nil, errors.New("peer: signature component longer than 32 bytes")
	}
	if sig.R.SetByteSlice(r) || sig.R.IsZero() {
		return nil, errors.New("peer: invalid r")
	}
	if sig.S.SetByteSlice(s) || sig.S.IsZero() {
		return nil, errors.New("peer: invalid s")
	}
	return &sig, nil
}

// Timing is the result of Measure.
type Timing struct {
	Runs    []time.Duration
	Median  time.Duration
	Min     time.Duration
	Max     time.Duration
	Average time.Duration
}

// Summarize computes the median, min, max and average of runs (which it
// does not modify). It returns the zero Timing for no runs.
func Summarize(runs []time.Duration) Timing {
	if len(runs) == 0 {
		return Timing{}
	}
	s := slices.Clone(runs)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Timing{Runs: runs, Median: med, Min: s[0], Max: s[len(s)-1], Average: sum / time.Duration(len(s))}
}

// wrap prefixes err with the protocol's name.
func wrap(p Protocol, what string, err error) error {
	return fmt.Errorf("peer: %s %d-of-%d %s: %w", p.Name(), p.T(), p.N(), what, err)
}
