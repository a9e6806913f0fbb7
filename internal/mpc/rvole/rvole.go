// Package rvole is the two-party random-VOLE (vector oblivious linear
// evaluation) multiplication that DKLs23 signing uses: F_RVOLE(q, ℓ) of
// Doerner, Kondi, Lee and shelat, "Threshold ECDSA in Three Rounds" (IEEE S&P
// 2024, ePrint 2023/765), §3 (Functionality 3.5), realised with OT extension
// as in Doerner, Kondi, Lee and shelat, "Threshold ECDSA from ECDSA
// Assumptions: The Multiparty Case" (IEEE S&P 2019, DKLs19), §3 (Protocol 5,
// π_Mul): Bob encodes his input β with a randomised encoding, and a
// Fiat–Shamir check catches an Alice who used inconsistent inputs in the OT
// correlations.
//
// Roles: Alice has a vector input α ∈ Zq^ℓ and is the OT-extension sender
// (the base-OT receiver); Bob has a scalar input β and is the OT-extension
// receiver (the base-OT sender). The outputs are additive shares
// c[k] + d[k] = α[k]·β (mod q), c to Alice and d to Bob.
//
// Usage:
//
//  1. Once per ordered pair (inside DKG and refresh), two messages:
//     Bob: SetupBob → msg1 to Alice; Alice: SetupAlice(msg1) → msg2 to Bob;
//     Bob: (*BobSetupState).Finish(msg2). AliceSetup and BobSetup are the
//     long-term secret seeds; store them with MarshalBinary.
//  2. Per multiplication, two messages: Bob: (*BobSetup).Start(β) → msg1;
//     Alice: (*AliceSetup).Multiply(α, msg1) → (c, msg2); Bob:
//     (*BobMul).Finish(msg2) → d.
//
// The sid of each multiplication must be unique per session AND per ordered
// pair; the caller binds its session ID, the pair and the key id into it. A
// failed check returns an error wrapping ErrCheatDetected; the caller blames
// the peer whose message was being processed.
package rvole

import (
	"errors"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// ErrCheatDetected is wrapped by every error that proves the peer deviated
// from the protocol (a failed consistency check, a malformed message).
var ErrCheatDetected = errors.New("rvole: peer cheated")

var errNotImplemented = errors.New("rvole: not implemented yet")

// BobSetupState is Bob's state between SetupBob and Finish.
type BobSetupState struct{ _ [0]func() }

// AliceSetup is Alice's long-term secret seed for one ordered pair. It never
// prints; it has no String method and no exported fields.
type AliceSetup struct{ _ [0]func() }

// BobSetup is Bob's long-term secret seed for one ordered pair. It never
// prints; it has no String method and no exported fields.
type BobSetup struct{ _ [0]func() }

// BobMul is Bob's state for one multiplication. It is one-shot: Finish may
// succeed at most once.
type BobMul struct{ _ [0]func() }

// SetupBob starts the pairwise setup and returns the message for Alice.
func SetupBob(sid []byte, rand io.Reader) (*BobSetupState, []byte, error) {
	return nil, nil, errNotImplemented
}

// SetupAlice answers Bob's setup message and returns Alice's seed and the
// message for Bob. An error wrapping ErrCheatDetected blames Bob.
func SetupAlice(sid []byte, msg1 []byte, rand io.Reader) (*AliceSetup, []byte, error) {
	return nil, nil, errNotImplemented
}

// Finish completes Bob's setup. An error wrapping ErrCheatDetected blames
// Alice. Finish may be called once.
func (s *BobSetupState) Finish(msg2 []byte) (*BobSetup, error) {
	return nil, errNotImplemented
}

// MarshalBinary returns the versioned, canonical encoding of the seed.
func (a *AliceSetup) MarshalBinary() ([]byte, error) { return nil, errNotImplemented }

// UnmarshalBinary parses an encoding made by MarshalBinary, strictly.
func (a *AliceSetup) UnmarshalBinary(b []byte) error { return errNotImplemented }

// Equal reports, in constant time, whether a and o hold the same seed.
func (a *AliceSetup) Equal(o *AliceSetup) bool { return false }

// MarshalBinary returns the versioned, canonical encoding of the seed.
func (b *BobSetup) MarshalBinary() ([]byte, error) { return nil, errNotImplemented }

// UnmarshalBinary parses an encoding made by MarshalBinary, strictly.
func (b *BobSetup) UnmarshalBinary(data []byte) error { return errNotImplemented }

// Equal reports, in constant time, whether b and o hold the same seed.
func (b *BobSetup) Equal(o *BobSetup) bool { return false }

// Start begins one multiplication with Bob's input beta and returns the
// round-1 message for Alice.
func (b *BobSetup) Start(sid []byte, beta *secp256k1.ModNScalar, rand io.Reader) (*BobMul, []byte, error) {
	return nil, nil, errNotImplemented
}

// Multiply is Alice's side of one multiplication: given her inputs alpha
// (ℓ = len(alpha) ≥ 1) and Bob's round-1 message, it returns her shares c
// (len ℓ) and the message for Bob. An error wrapping ErrCheatDetected
// blames Bob.
func (a *AliceSetup) Multiply(sid []byte, alpha []secp256k1.ModNScalar, msg1 []byte, rand io.Reader) (c []secp256k1.ModNScalar, msg2 []byte, err error) {
	return nil, nil, errNotImplemented
}

// Finish checks Alice's message and returns Bob's shares d, with
// c[k] + d[k] = alpha[k]·beta. An error wrapping ErrCheatDetected blames
// Alice. A BobMul is one-shot: any second call fails.
func (m *BobMul) Finish(msg2 []byte) (d []secp256k1.ModNScalar, err error) {
	return nil, errNotImplemented
}
