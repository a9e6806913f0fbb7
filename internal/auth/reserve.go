package auth

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// KindReserve is the peer RPC kind (transport.Call / Handle) of a nonce
// reservation: a gateway asks a node that will not sign to record an
// approval's nonces for its request, as a signer's Authorize would.
const KindReserve = "auth/reserve/v1"

// ReserveQuorum returns how many of a key's n holders must have recorded an
// approval's nonces for a request before any signer contributes to it, when
// any t of them sign: n−t+1. A quorum Q of that size and the signer set S
// of any other request (|S| = t) share a node, since (n−t+1) + t > n; that
// node records the nonce for one request and refuses it for the other
// (Authorize), so one approval yields at most one signature, whichever
// honest gateways it is replayed to (DESIGN.md, "Quorums against a
// malicious gateway": n−t+1 and t are enough against replays through honest
// gateways). It is the smallest such size: the n−q nodes outside a quorum
// of q ≤ n−t nodes can sign on their own.
//
// The signers of a request record the nonces themselves (their own
// Authorize), so only ReserveQuorum(n, t) − t other nodes need a
// reservation, none when n ≤ 2t−1.
//
// It does not hold against a malicious gateway, which is itself in Q: see
// docs/security.md.
func ReserveQuorum(n, t int) int { return n - t + 1 }

// Wire format of a reservation (KindReserve):
//
//	version(1)=1 ‖ scope ‖ account ‖ method ‖ hash(32) ‖ request(16) ‖ proofs
//
// where scope, account, method and proofs are UTF-8 strings with a u32
// big-endian length prefix (record's encoding) and hash and request have
// no prefix. Decoding is strict (version, lengths, empty scope, account or
// method, non-UTF-8 text and trailing bytes are errors), so a reservation
// has exactly one encoding. The answer is empty; a refusal is the handler's
// error, "[code] message" of auth's *api.Error (the client-visible parts
// only), as the wallet's co-signers answer.
const reserveVersion = 1

// Limits of a reservation's fields.
const (
	maxReserveID     = api.MaxAccountIDLen
	maxReserveMethod = 64
)

var errReserveMalformed = errors.New("auth: malformed reservation")

// EncodeReservation returns the body of a reservation of the nonces of the
// approvals in proofs for op (see KindReserve).
func EncodeReservation(op Operation, proofs string) []byte {
	var w record.Writer
	w.U8(reserveVersion)
	w.String(op.Scope)
	w.String(op.Account)
	w.String(op.Method)
	w.Fixed(op.Hash[:])
	w.Fixed(op.Request[:])
	w.String(proofs)
	return w.Bytes()
}

// DecodeReservation decodes a reservation strictly.
func DecodeReservation(b []byte) (Operation, string, error) {
	r := record.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != reserveVersion {
		return Operation{}, "", fmt.Errorf("%w: version %d", errReserveMalformed, v)
	}
	var op Operation
	op.Scope = r.String(maxReserveID, "scope")
	op.Account = r.String(maxReserveID, "account")
	op.Method = r.String(maxReserveMethod, "method")
	r.Fixed(op.Hash[:], "hash")
	r.Fixed(op.Request[:], "request")
	proofs := r.String(MaxProofsLen, "proofs")
	if err := r.Done(); err != nil {
		return Operation{}, "", fmt.Errorf("%w: %v", errReserveMalformed, err)
	}
	if op.Scope == "" || op.Account == "" || op.Method == "" || !utf8.ValidString(proofs) {
		return Operation{}, "", fmt.Errorf("%w: empty scope, account or method", errReserveMalformed)
	}
	return op, proofs, nil
}

// ReserveHandler returns this node's handler of KindReserve (a
// transport.Handler). It runs Authorize on the reservation's operation and
// proofs, exactly as a signer would, so that a nonce is recorded only for
// an approval that verifies against this node's own state: nobody can burn
// a user's nonces without the user's approval, and a refused reservation
// records nothing. It is idempotent for the same request (Authorize
// accepts the same nonce again with the same operation hash and request),
// and later lets this node co-sign that same request, but no other.
//
// The operation comes from the gateway, but Authorize binds it to the
// approvals: the hash, method, scope and account must be the ones the
// user signed, so only the request id is the gateway's choice.
//
// catchUp, if not nil, brings the auth records up to date from the peers
// (replica.CatchUp); it is called once when the scope or account is not
// known yet (a record reaches n−t+1 nodes, and this node may be behind).
func (s *Service) ReserveHandler(catchUp func(context.Context) error) func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
	return func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		op, proofs, err := DecodeReservation(body)
		if err != nil {
			return nil, err
		}
		// A peer's call carries no sealed scope: AuthorizeSealed is
		// Authorize with its catch-up retry here.
		_, err = AuthorizeSealed(ctx, s, catchUp, op, proofs)
		var ae *api.Error
		if err == nil {
			return nil, nil
		}
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("[%d] %s", ae.Code, ae.Message)
		}
		return nil, errors.New("auth: reservation failed") // an internal error: the cause stays here
	}
}
