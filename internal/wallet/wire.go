package wallet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Peer RPC kinds (transport.Call / Handle).
const (
	kindKeygen = "wallet/keygen/v1"
	kindSign   = "wallet/sign/v1"
)

// Wire format of the peer invitations. Every body is
//
//	version(1)=1 ‖ fields
//
// each field length-prefixed (dkls23.AppendField), in the order of the
// struct below; decoding is strict (wrong version, field count, lengths,
// trailing bytes, non-UTF-8 text are errors), so each invitation has exactly
// one encoding.
const wireVersion = 1

// Nonce and request id lengths.
const (
	nonceLen   = 32
	requestLen = 16
	maxProofs  = 64 << 10
	maxParams  = api.MaxBodyBytes
)

var errMalformed = errors.New("wallet: malformed peer message")

// signInvite asks a peer to take part in one signing session.
type signInvite struct {
	Method  string
	Params  []byte // the client's JSON params, as received
	Proofs  string // the client's X-Keymesh-Auth value
	Request [requestLen]byte
	Nonce   [nonceLen]byte
	Signers []round.PartyID // sorted, distinct
}

// keygenInvite asks a peer to take part in one key generation.
type keygenInvite struct {
	Scope, Account string
	Proofs         string
	Request        [requestLen]byte
	Nonce          [nonceLen]byte
}

func (m *signInvite) marshal() []byte {
	b := []byte{wireVersion}
	b = dkls23.AppendField(b, []byte(m.Method))
	b = dkls23.AppendField(b, m.Params)
	b = dkls23.AppendField(b, []byte(m.Proofs))
	b = dkls23.AppendField(b, m.Request[:])
	b = dkls23.AppendField(b, m.Nonce[:])
	ps := make([]byte, 0, 2*len(m.Signers))
	for _, p := range m.Signers {
		ps = binary.BigEndian.AppendUint16(ps, uint16(p))
	}
	return dkls23.AppendField(b, ps)
}

func (m *signInvite) unmarshal(b []byte) error {
	f, err := fields(b, 6)
	if err != nil {
		return err
	}
	if len(f[0]) == 0 || len(f[0]) > 64 || !utf8.Valid(f[0]) {
		return fmt.Errorf("%w: method", errMalformed)
	}
	if len(f[1]) > maxParams || len(f[2]) > maxProofs || !utf8.Valid(f[2]) {
		return fmt.Errorf("%w: params or proofs", errMalformed)
	}
	if len(f[3]) != requestLen || len(f[4]) != nonceLen {
		return fmt.Errorf("%w: request id or nonce length", errMalformed)
	}
	if len(f[5]) == 0 || len(f[5])%2 != 0 || len(f[5]) > 2*dkls23.MaxParties {
		return fmt.Errorf("%w: signer list", errMalformed)
	}
	signers := make([]round.PartyID, len(f[5])/2)
	for i := range signers {
		signers[i] = round.PartyID(binary.BigEndian.Uint16(f[5][2*i:]))
		if signers[i] == 0 || i > 0 && signers[i] <= signers[i-1] {
			return fmt.Errorf("%w: signers not sorted, distinct and non-zero", errMalformed)
		}
	}
	*m = signInvite{Method: string(f[0]), Params: slices.Clone(f[1]), Proofs: string(f[2]), Signers: signers}
	copy(m.Request[:], f[3])
	copy(m.Nonce[:], f[4])
	return nil
}

func (m *keygenInvite) marshal() []byte {
	b := []byte{wireVersion}
	b = dkls23.AppendField(b, []byte(m.Scope))
	b = dkls23.AppendField(b, []byte(m.Account))
	b = dkls23.AppendField(b, []byte(m.Proofs))
	b = dkls23.AppendField(b, m.Request[:])
	return dkls23.AppendField(b, m.Nonce[:])
}

func (m *keygenInvite) unmarshal(b []byte) error {
	f, err := fields(b, 5)
	if err != nil {
		return err
	}
	for _, s := range f[:2] {
		if len(s) == 0 || len(s) > api.MaxAccountIDLen || !utf8.Valid(s) {
			return fmt.Errorf("%w: scope or account", errMalformed)
		}
	}
	if len(f[2]) > maxProofs || !utf8.Valid(f[2]) {
		return fmt.Errorf("%w: proofs", errMalformed)
	}
	if len(f[3]) != requestLen || len(f[4]) != nonceLen {
		return fmt.Errorf("%w: request id or nonce length", errMalformed)
	}
	*m = keygenInvite{Scope: string(f[0]), Account: string(f[1]), Proofs: string(f[2])}
	copy(m.Request[:], f[3])
	copy(m.Nonce[:], f[4])
	return nil
}

func fields(b []byte, n int) ([][]byte, error) {
	if len(b) == 0 || b[0] != wireVersion {
		return nil, fmt.Errorf("%w: unknown version", errMalformed)
	}
	f, err := dkls23.SplitFields(b[1:], n)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return f, nil
}

// KindSign is the peer RPC kind (transport.Call) of a signing invitation.
const KindSign = kindSign

// EncodeSignInvite returns the body of a signing invitation (KindSign) in
// the wire format above. The gateway builds it internally; it is exported
// for adversarial tests that play a malicious gateway talking to honest
// co-signers directly.
func EncodeSignInvite(method string, params []byte, proofs string, request [16]byte, nonce [32]byte, signers []uint16) []byte {
	inv := signInvite{Method: method, Params: params, Proofs: proofs, Request: request, Nonce: nonce}
	for _, s := range signers {
		inv.Signers = append(inv.Signers, round.PartyID(s))
	}
	return inv.marshal()
}
