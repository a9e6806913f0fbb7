package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/keymesh/keymesh/internal/record"
)

// Kinds of entries.
const (
	KindRecord     = "auth.record"        // an auth record applied to this node's state
	KindSign       = "wallet.sign"        // a signature, this node the gateway
	KindCosign     = "wallet.cosign"      // a signature, this node a co-signer
	KindKeygen     = "wallet.keygen"      // a key generation, this node the gateway
	KindKeygenPeer = "wallet.keygen.peer" // a key generation, this node invited
)

// Outcomes of an entry.
const (
	OutcomeOK      = "ok"      // applied, signed, generated
	OutcomeRefused = "refused" // not authorised, or refused by a peer (Code says why)
	OutcomeFailed  = "failed"  // a session or the store failed
)

// Limits of an entry's fields (decoding refuses longer ones).
const (
	maxKind    = 32
	maxID      = 256 // scope and account ids (record's limits are smaller)
	maxMethod  = 64
	maxKeys    = 32
	maxKeyID   = 64
	maxSigners = 256
	maxOutcome = 16
)

const entryVersion = 1

const (
	entryDomain = "keymesh/audit/entry/v1"
	headDomain  = "keymesh/audit/head/v1"
)

// ErrMalformed is wrapped by every decoding error of an entry or a head.
var ErrMalformed = errors.New("audit: malformed")

// Entry is one event of a node's audit log (see the package doc for what
// each field may hold). Seq and Prev are set by Append.
type Entry struct {
	Seq     uint64
	Prev    [32]byte
	Time    time.Time
	Kind    string
	Scope   string
	Account string
	Method  string
	OpHash  [32]byte
	Request [16]byte
	Keys    []string // approving key ids (KeyID), ascending
	Signers []uint16 // node ids, ascending
	Outcome string
	Code    int32 // the JSON-RPC error code of a refusal or failure; 0 if ok
}

// normalize sorts and deduplicates the lists, so that an entry built in any
// order encodes canonically.
func (e *Entry) normalize() {
	e.Keys = slices.Compact(slices.Sorted(slices.Values(e.Keys)))
	e.Signers = slices.Compact(slices.Sorted(slices.Values(e.Signers)))
	e.Time = e.Time.UTC()
}

// check reports what makes e impossible to encode canonically.
func (e *Entry) check() error {
	switch {
	case e.Kind == "" || len(e.Kind) > maxKind:
		return fmt.Errorf("kind %q", e.Kind)
	case len(e.Scope) > maxID || len(e.Account) > maxID || len(e.Method) > maxMethod:
		return errors.New("scope, account or method too long")
	case len(e.Keys) > maxKeys || len(e.Signers) > maxSigners:
		return errors.New("too many keys or signers")
	case e.Time.Before(time.Unix(0, 0)) || e.Time.After(time.Unix(0, 1<<62)):
		return errors.New("time out of range")
	}
	switch e.Outcome {
	case OutcomeOK, OutcomeRefused, OutcomeFailed:
	default:
		return fmt.Errorf("outcome %q", e.Outcome)
	}
	for i, k := range e.Keys {
		if k == "" || len(k) > maxKeyID || i > 0 && e.Keys[i-1] >= k {
			return errors.New("key ids must be non-empty, short and strictly ascending")
		}
	}
	for i, s := range e.Signers {
		if i > 0 && e.Signers[i-1] >= s {
			return errors.New("signers must be strictly ascending")
		}
	}
	return nil
}

// Marshal returns e's canonical encoding (package doc). e must be valid:
// entries are built by Append, which normalizes and checks them.
func (e *Entry) Marshal() []byte {
	var w record.Writer
	w.U8(entryVersion)
	w.U64(e.Seq)
	w.Fixed(e.Prev[:])
	w.U64(uint64(e.Time.UnixNano()))
	w.String(e.Kind)
	w.String(e.Scope)
	w.String(e.Account)
	w.String(e.Method)
	w.Fixed(e.OpHash[:])
	w.Fixed(e.Request[:])
	w.U32(uint32(len(e.Keys)))
	for _, k := range e.Keys {
		w.String(k)
	}
	w.U32(uint32(len(e.Signers)))
	for _, s := range e.Signers {
		w.U32(uint32(s))
	}
	w.String(e.Outcome)
	w.U32(uint32(e.Code))
	return w.Bytes()
}

// DecodeEntry decodes Marshal's output strictly: any other input, trailing
// bytes included, is an error wrapping ErrMalformed, and for every b it
// accepts, Marshal returns b again.
func DecodeEntry(b []byte) (*Entry, error) {
	r := record.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != entryVersion {
		return nil, fmt.Errorf("%w: entry version %d", ErrMalformed, v)
	}
	e := &Entry{Seq: r.U64("seq")}
	r.Fixed(e.Prev[:], "prev")
	ns := r.U64("time")
	e.Kind = r.String(maxKind, "kind")
	e.Scope = r.String(maxID, "scope")
	e.Account = r.String(maxID, "account")
	e.Method = r.String(maxMethod, "method")
	r.Fixed(e.OpHash[:], "ophash")
	r.Fixed(e.Request[:], "request")
	if n := r.Count(maxKeys, "keys"); n > 0 {
		e.Keys = make([]string, n)
		for i := range e.Keys {
			e.Keys[i] = r.String(maxKeyID, "key")
		}
	}
	if n := r.Count(maxSigners, "signers"); n > 0 {
		e.Signers = make([]uint16, n)
		for i := range e.Signers {
			v := r.U32("signer")
			if v > 0xFFFF && r.Err() == nil {
				return nil, fmt.Errorf("%w: signer %d", ErrMalformed, v)
			}
			e.Signers[i] = uint16(v)
		}
	}
	e.Outcome = r.String(maxOutcome, "outcome")
	e.Code = int32(r.U32("code"))
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: entry: %v", ErrMalformed, err)
	}
	if ns > 1<<62 {
		return nil, fmt.Errorf("%w: entry time out of range", ErrMalformed)
	}
	e.Time = time.Unix(0, int64(ns)).UTC()
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("%w: entry: %v", ErrMalformed, err)
	}
	if e.Seq == 0 {
		return nil, fmt.Errorf("%w: entry seq 0", ErrMalformed)
	}
	return e, nil
}

// Hash returns the entry's chain hash: SHA-256 over the domain tag and the
// canonical encoding (package doc).
func (e *Entry) Hash() [32]byte { return hashEncoding(e.Marshal()) }

func hashEncoding(enc []byte) [32]byte {
	var w record.Writer
	w.String(entryDomain)
	h := sha256.New()
	h.Write(w.Bytes())
	h.Write(enc)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// KeyID is the id of a public key or credential in an entry's Keys: kind
// ("dev", "key", "session", "passkey") and the first 8 bytes of id in hex,
// where id is record.PublicKey.ID for a key and the credential id itself
// (hashed here to a fixed size) for a passkey. Both are public values.
func KeyID(kind string, id []byte) string {
	if len(id) != 32 {
		h := sha256.Sum256(id)
		id = h[:]
	}
	return kind + ":" + hex.EncodeToString(id[:8])
}
