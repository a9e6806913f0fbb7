package round

import (
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/keymesh/keymesh/internal/codec"
)

// SessionID names one protocol run. Every message carries it, and every
// Fiat–Shamir hash of a protocol should absorb it.
type SessionID [32]byte

// MinNonceLen is the shortest nonce NewSessionID accepts.
const MinNonceLen = 16

// NewSessionID hashes the protocol name, the party set, the threshold, a
// fresh nonce and optional context (a key id, for example) into a SessionID.
//
// The encoding is unambiguous: every field is length-prefixed
// (TupleHash-style, NIST SP 800-185 §5) under cSHAKE256 with the
// customisation "keymesh session id", so two different tuples never hash the
// same way. Parties may be given in any order; they must be distinct and
// non-zero.
func NewSessionID(protocol string, parties []PartyID, threshold int, nonce []byte, context ...[]byte) (SessionID, error) {
	var sid SessionID
	if protocol == "" {
		return sid, errors.New("round: empty protocol name")
	}
	if len(nonce) < MinNonceLen {
		return sid, fmt.Errorf("round: session nonce is %d bytes, need at least %d", len(nonce), MinNonceLen)
	}
	ps, err := SortParties(parties)
	if err != nil {
		return sid, err
	}
	if threshold < 1 || threshold > len(ps) {
		return sid, fmt.Errorf("round: threshold %d out of range for %d parties", threshold, len(ps))
	}
	t := NewTranscript("keymesh session id")
	t.WriteString(protocol)
	pb := make([]byte, 0, 2*len(ps))
	for _, p := range ps {
		pb = binary.BigEndian.AppendUint16(pb, uint16(p))
	}
	t.WriteBytes(pb)
	t.WriteUint64(uint64(threshold))
	t.WriteBytes(nonce)
	for _, c := range context {
		t.WriteBytes(c)
	}
	t.Sum(sid[:0])
	return sid, nil
}

// SortParties returns a sorted copy of parties, or an error if one is zero
// or appears twice.
func SortParties(parties []PartyID) ([]PartyID, error) {
	if len(parties) == 0 {
		return nil, errors.New("round: no parties")
	}
	ps := slices.Clone(parties)
	slices.Sort(ps)
	for i, p := range ps {
		if p == 0 {
			return nil, errors.New("round: party id 0 is not allowed")
		}
		if i > 0 && ps[i-1] == p {
			return nil, fmt.Errorf("round: %v appears twice", p)
		}
	}
	return ps, nil
}

// Transcript is an unambiguous hash of a sequence of fields: each field is
// written with its length first, so ("ab","c") and ("a","bc") differ. It is
// cSHAKE256 with a customisation string naming its use.
type Transcript struct {
	h *sha3.SHAKE
}

// NewTranscript starts a transcript with the given domain separator.
func NewTranscript(domain string) *Transcript {
	return &Transcript{h: sha3.NewCSHAKE256(nil, []byte(domain))}
}

// WriteBytes appends one length-prefixed field.
func (t *Transcript) WriteBytes(b []byte) {
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(b)))
	t.h.Write(l[:])
	t.h.Write(b)
}

// WriteString appends one length-prefixed field.
func (t *Transcript) WriteString(s string) { t.WriteBytes([]byte(s)) }

// WriteUint64 appends one field holding v as 8 big-endian bytes.
func (t *Transcript) WriteUint64(v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	t.WriteBytes(b[:])
}

// Sum appends 32 bytes of output to b. The transcript must not be written
// to afterwards.
func (t *Transcript) Sum(b []byte) []byte { return t.Read(b, 32) }

// Read appends n bytes of output to b. The transcript must not be written to
// afterwards.
func (t *Transcript) Read(b []byte, n int) []byte {
	out := make([]byte, n)
	t.h.Read(out)
	return append(b, out...)
}

// Message is one protocol message. Rounds set To and Payload; the Session
// sets the rest.
type Message struct {
	SessionID SessionID
	Round     uint16
	From      PartyID
	To        PartyID // Broadcast (0) for a message to every party
	// Echo, set by the Session on messages of round k+1, is the digest of
	// every round-k broadcast as the sender received it, in party order.
	// Empty when round k had no broadcasts.
	Echo    []byte
	Payload []byte
}

// IsBroadcast reports whether the message goes to every party.
func (m *Message) IsBroadcast() bool { return m.To == Broadcast }

const (
	messageVersion = 1
	// MaxPayload bounds a message's payload. DKLs23 messages are tens of
	// kilobytes; this leaves room and stops a peer making us allocate
	// without limit.
	MaxPayload = 4 << 20
	// MaxEcho bounds the echo field: 32 bytes per party, at most 1024 parties.
	MaxEcho   = 32 * 1024
	headerLen = 1 + 32 + 2 + 2 + 2 + 4 + 4
)

// MarshalBinary encodes the message canonically:
//
//	version(1)=1 ‖ session id(32) ‖ round(2) ‖ from(2) ‖ to(2) ‖
//	len(echo)(4) ‖ echo ‖ len(payload)(4) ‖ payload
//
// integers big-endian.
func (m *Message) MarshalBinary() ([]byte, error) {
	if len(m.Payload) > MaxPayload {
		return nil, fmt.Errorf("round: payload of %d bytes exceeds %d", len(m.Payload), MaxPayload)
	}
	if len(m.Echo) > MaxEcho {
		return nil, fmt.Errorf("round: echo of %d bytes exceeds %d", len(m.Echo), MaxEcho)
	}
	b := make([]byte, 0, headerLen+len(m.Echo)+len(m.Payload))
	b = append(b, messageVersion)
	b = append(b, m.SessionID[:]...)
	b = binary.BigEndian.AppendUint16(b, m.Round)
	b = binary.BigEndian.AppendUint16(b, uint16(m.From))
	b = binary.BigEndian.AppendUint16(b, uint16(m.To))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Echo)))
	b = append(b, m.Echo...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Payload)))
	b = append(b, m.Payload...)
	return b, nil
}

// errMalformedMessage is wrapped by the errors of UnmarshalBinary.
var errMalformedMessage = errors.New("round: malformed message")

// UnmarshalBinary decodes what MarshalBinary produced, with codec.Reader.
// It is strict: an unknown version, a zero sender or round, oversized or
// truncated fields and trailing bytes are errors. On error m is unchanged.
func (m *Message) UnmarshalBinary(b []byte) error {
	r := codec.NewReader(b, errMalformedMessage)
	if v := r.U8("version"); r.Err() == nil && v != messageVersion {
		r.Fail("unknown message version %d", v)
	}
	var out Message
	copy(out.SessionID[:], r.Bytes(len(out.SessionID), "session id"))
	out.Round = r.U16("round")
	out.From = PartyID(r.U16("from"))
	out.To = PartyID(r.U16("to"))
	echo := r.Var(MaxEcho, "echo")
	payload := r.Var(MaxPayload, "payload")
	if err := r.Done(); err != nil {
		return err
	}
	if out.From == 0 {
		return errors.New("round: message from party 0")
	}
	if out.Round == 0 {
		return errors.New("round: message for round 0")
	}
	if len(echo)%32 != 0 {
		return fmt.Errorf("round: echo of %d bytes is not a multiple of 32", len(echo))
	}
	if len(echo) > 0 {
		out.Echo = slices.Clone(echo)
	}
	out.Payload = slices.Clone(payload)
	*m = out
	return nil
}

func (m *Message) clone() *Message {
	c := *m
	c.Echo = slices.Clone(m.Echo)
	c.Payload = slices.Clone(m.Payload)
	return &c
}
