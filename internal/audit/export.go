package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// EntryJSON is an entry as `keymesh audit export` writes it, one JSON
// object a line, for a log shipper. Hash is the entry's chain hash.
type EntryJSON struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Scope   string    `json:"scope,omitempty"`
	Account string    `json:"account,omitempty"`
	Method  string    `json:"method,omitempty"`
	OpHash  string    `json:"op_hash,omitempty"`
	Request string    `json:"request,omitempty"`
	Keys    []string  `json:"keys,omitempty"`
	Signers []uint16  `json:"signers,omitempty"`
	Outcome string    `json:"outcome"`
	Code    int32     `json:"code,omitempty"`
	Prev    string    `json:"prev"`
	Hash    string    `json:"hash"`
}

// JSON returns e's export form, with its chain hash h.
func (e *Entry) JSON(h [32]byte) EntryJSON {
	j := EntryJSON{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Scope: e.Scope, Account: e.Account, Method: e.Method,
		Keys: e.Keys, Signers: e.Signers, Outcome: e.Outcome, Code: e.Code,
		Prev: hex.EncodeToString(e.Prev[:]), Hash: hex.EncodeToString(h[:])}
	if e.OpHash != ([32]byte{}) {
		j.OpHash = hex.EncodeToString(e.OpHash[:])
	}
	if e.Request != ([16]byte{}) {
		j.Request = hex.EncodeToString(e.Request[:])
	}
	return j
}

// HeadJSON is a signed head as `keymesh audit heads` writes it and
// `keymesh audit verify --heads` reads it: the fields of SignedHead, the
// hash in hex and the signature in base64.
type HeadJSON struct {
	Cluster string    `json:"cluster"`
	Node    uint16    `json:"node"`
	Seq     uint64    `json:"seq"`
	Hash    string    `json:"hash"`
	Time    time.Time `json:"time"`
	Sig     string    `json:"sig"`
}

// JSON returns s's file form.
func (s *SignedHead) JSON() HeadJSON {
	return HeadJSON{Cluster: s.Cluster, Node: s.Node, Seq: s.Seq, Hash: hex.EncodeToString(s.Hash[:]), Time: s.Time, Sig: base64.StdEncoding.EncodeToString(s.Sig)}
}

// ParseHeadJSON decodes one line of HeadJSON strictly (unknown fields are
// errors). It does not verify the signature.
func ParseHeadJSON(line []byte) (*SignedHead, error) {
	var j HeadJSON
	if err := strictJSON(line, &j); err != nil {
		return nil, fmt.Errorf("%w: head: %v", ErrMalformed, err)
	}
	s := &SignedHead{Head: Head{Cluster: j.Cluster, Node: j.Node, Seq: j.Seq, Time: j.Time.UTC()}}
	h, err := hex.DecodeString(j.Hash)
	if err != nil || len(h) != 32 {
		return nil, fmt.Errorf("%w: head: hash must be 64 hex digits", ErrMalformed)
	}
	copy(s.Hash[:], h)
	if s.Sig, err = base64.StdEncoding.DecodeString(j.Sig); err != nil || len(s.Sig) != 64 {
		return nil, fmt.Errorf("%w: head: sig must be base64 of 64 bytes", ErrMalformed)
	}
	// The binary form is the one that is signed: round-trip through it so
	// that both forms are checked alike.
	return DecodeSignedHead(s.Marshal())
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}
