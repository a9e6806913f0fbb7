package vault

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/keymesh/keymesh/internal/codec"
)

// DelegatedGrant is idOS's delegated write grant (DWG): the owner, by
// signing its Message with their Ethereum wallet (EIP-191 personal_sign),
// lets the issuer IssuerPublicKey write a credential for them and a copy
// for Grantee, with an access grant timelocked until AccessGrantTimelock.
// A consumer submits it with the signature; it is usable only between
// NotBefore and NotAfter.
type DelegatedGrant struct {
	ID                  string
	Owner               string // the owner's EVM address, 0x + 40 hex digits
	Grantee             string // the consumer's wallet identifier
	IssuerPublicKey     IssuerPublicKey
	AccessGrantTimelock time.Time
	NotBefore           time.Time
	NotAfter            time.Time
}

var (
	// ErrNotUsable is returned for a delegated grant used outside
	// [NotBefore, NotAfter].
	ErrNotUsable = errors.New("vault: delegated grant is not usable at this time")
	// ErrOwnerSignature is returned when the signature is not the owner's.
	ErrOwnerSignature = errors.New("vault: delegated grant is not signed by its owner")
)

// TimeLayout is the RFC 3339 form, seconds and "Z", that idOS uses for
// delegated grant times.
const TimeLayout = "2006-01-02T15:04:05Z"

// MaxWalletIdentifier bounds the grantee's wallet identifier.
const MaxWalletIdentifier = 256

// Message returns the text the owner signs, one "name: value" line per
// field of the idOS DWG field list, in its order, joined by "\n":
//
//	operation: delegatedWriteGrant
//	owner: <owner address>
//	consumer: <grantee wallet identifier>
//	issuer public key: <Ed25519 key, lowercase hex>
//	id: <grant id>
//	access grant timelock: <RFC 3339>
//	not usable before: <RFC 3339>
//	not usable after: <RFC 3339>
//
// No field may contain a line break (check refuses it), so the text names
// one grant only.
func (d *DelegatedGrant) Message() (string, error) {
	if err := d.check(); err != nil {
		return "", err
	}
	return d.message(), nil
}

func (d *DelegatedGrant) message() string {
	var b strings.Builder
	line := func(k, v string) {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(v)
	}
	line("operation", "delegatedWriteGrant")
	line("owner", d.Owner)
	line("consumer", d.Grantee)
	line("issuer public key", d.IssuerPublicKey.String())
	line("id", d.ID)
	line("access grant timelock", d.AccessGrantTimelock.UTC().Format(TimeLayout))
	line("not usable before", d.NotBefore.UTC().Format(TimeLayout))
	line("not usable after", d.NotAfter.UTC().Format(TimeLayout))
	return b.String()
}

// PersonalSignHash is the EIP-191 version 0x45 hash that personal_sign
// signs: Keccak-256("\x19Ethereum Signed Message:\n" ‖ decimal len(msg) ‖ msg).
func PersonalSignHash(msg []byte) [32]byte {
	var h [32]byte
	copy(h[:], crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n"+strconv.Itoa(len(msg))), msg))
	return h
}

// Hash returns the EIP-191 hash of the grant's Message.
func (d *DelegatedGrant) Hash() ([32]byte, error) {
	m, err := d.Message()
	if err != nil {
		return [32]byte{}, err
	}
	return PersonalSignHash([]byte(m)), nil
}

func (d *DelegatedGrant) check() error {
	if err := ValidID(d.ID); err != nil {
		return fmt.Errorf("vault: delegated grant id: %w", err)
	}
	if err := validAddress(d.Owner); err != nil {
		return fmt.Errorf("vault: delegated grant owner: %w", err)
	}
	if d.Grantee == "" || len(d.Grantee) > MaxWalletIdentifier {
		return fmt.Errorf("vault: delegated grant consumer of %d bytes, want 1 to %d", len(d.Grantee), MaxWalletIdentifier)
	}
	for i := 0; i < len(d.Grantee); i++ {
		if c := d.Grantee[i]; c <= ' ' || c >= 0x7f {
			return errors.New("vault: delegated grant consumer holds a space, control or non-ASCII byte")
		}
	}
	for _, t := range []time.Time{d.AccessGrantTimelock, d.NotBefore, d.NotAfter} {
		if t.Year() < 1970 || t.Year() > 9999 || t.Nanosecond() != 0 {
			return errors.New("vault: delegated grant time out of range or not whole seconds")
		}
	}
	if !d.NotBefore.Before(d.NotAfter) {
		return errors.New("vault: delegated grant not-before is not before not-after")
	}
	return nil
}

func validAddress(s string) error {
	if len(s) != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return errors.New("not a 0x-prefixed 20-byte address")
	}
	for i := 2; i < len(s); i++ {
		if !isHex(s[i]) {
			return errors.New("not a 0x-prefixed 20-byte address")
		}
	}
	return nil
}

// SignDelegatedGrant signs the grant's Message as personal_sign does, with
// a local secp256k1 key: r ‖ s ‖ v, v = 27 or 28. A wallet held by keymesh
// nodes produces the same signature through the threshold signer instead.
func SignDelegatedGrant(d *DelegatedGrant, key *ecdsa.PrivateKey) ([]byte, error) {
	h, err := d.Hash()
	if err != nil {
		return nil, err
	}
	sig, err := crypto.Sign(h[:], key)
	if err != nil {
		return nil, fmt.Errorf("vault: signing delegated grant: %w", err)
	}
	sig[64] += 27
	return sig, nil
}

// VerifyDelegatedGrant checks that sig (r ‖ s ‖ v, v in {0, 1, 27, 28}, s
// in the lower half of the order as EIP-2 requires) is the owner's
// personal_sign of d's Message, and that now lies in [NotBefore, NotAfter].
// The errors wrap ErrOwnerSignature and ErrNotUsable.
func VerifyDelegatedGrant(d *DelegatedGrant, sig []byte, now time.Time) error {
	h, err := d.Hash()
	if err != nil {
		return err
	}
	if len(sig) != 65 {
		return fmt.Errorf("%w: signature is %d bytes, want 65", ErrOwnerSignature, len(sig))
	}
	v := sig[64]
	if v >= 27 {
		v -= 27
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if !crypto.ValidateSignatureValues(v, r, s, true) {
		return fmt.Errorf("%w: malformed or high-s signature", ErrOwnerSignature)
	}
	rsv := append(append([]byte(nil), sig[:64]...), v)
	pub, err := crypto.SigToPub(h[:], rsv)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrOwnerSignature, err)
	}
	owner, _ := hex.DecodeString(d.Owner[2:])
	if !bytes.Equal(crypto.PubkeyToAddress(*pub).Bytes(), owner) {
		return ErrOwnerSignature
	}
	if now.Before(d.NotBefore) || now.After(d.NotAfter) {
		return fmt.Errorf("%w: usable from %s to %s", ErrNotUsable, d.NotBefore.UTC().Format(TimeLayout), d.NotAfter.UTC().Format(TimeLayout))
	}
	return nil
}

// SignedDelegatedGrant is a delegated grant with the owner's signature, as a
// consumer submits it.
type SignedDelegatedGrant struct {
	Grant     DelegatedGrant
	Signature [65]byte
}

// Verify is VerifyDelegatedGrant(&s.Grant, s.Signature[:], now).
func (s *SignedDelegatedGrant) Verify(now time.Time) error {
	return VerifyDelegatedGrant(&s.Grant, s.Signature[:], now)
}

const delegatedVersion = 1

// MarshalBinary encodes the signed grant:
//
//	'D' ‖ version(1)=1 ‖ str(id) ‖ str(owner) ‖ str(consumer) ‖ issuer(32) ‖
//	timelock(8) ‖ not before(8) ‖ not after(8) ‖ signature(65)
//
// times as Unix seconds.
func (s *SignedDelegatedGrant) MarshalBinary() ([]byte, error) {
	d := &s.Grant
	if err := d.check(); err != nil {
		return nil, err
	}
	var e codec.Writer
	e.Grow(2 + 12 + 36 + 42 + len(d.Grantee) + 32 + 24 + 65)
	e.U8(typeDelegatedGrant)
	e.U8(delegatedVersion)
	e.String(d.ID)
	e.String(d.Owner)
	e.String(d.Grantee)
	e.Fixed(d.IssuerPublicKey[:])
	e.U64(uint64(d.AccessGrantTimelock.Unix()))
	e.U64(uint64(d.NotBefore.Unix()))
	e.U64(uint64(d.NotAfter.Unix()))
	e.Fixed(s.Signature[:])
	return e.Bytes(), nil
}

// maxUnix is 9999-12-31T23:59:59Z, the last time TimeLayout can write.
const maxUnix = 253402300799

// UnmarshalBinary decodes what MarshalBinary produced, strictly. It does
// not verify the signature. On error s is unchanged.
func (s *SignedDelegatedGrant) UnmarshalBinary(b []byte) error {
	dec := codec.NewReader(b, errDelegatedEncoding)
	readHeader(&dec, typeDelegatedGrant, delegatedVersion, "delegated grant")
	var out SignedDelegatedGrant
	d := &out.Grant
	d.ID = string(dec.Var(36, "id"))
	d.Owner = string(dec.Var(42, "owner"))
	d.Grantee = string(dec.Var(MaxWalletIdentifier, "consumer"))
	copy(d.IssuerPublicKey[:], dec.Bytes(32, "issuer public key"))
	var ts [3]uint64
	for i, n := range []string{"timelock", "not before", "not after"} {
		ts[i] = dec.U64(n)
	}
	copy(out.Signature[:], dec.Bytes(65, "signature"))
	if err := dec.Done(); err != nil {
		return err
	}
	for _, t := range ts {
		if t > maxUnix {
			return errors.New("vault: delegated grant: time out of range")
		}
	}
	d.AccessGrantTimelock = time.Unix(int64(ts[0]), 0).UTC()
	d.NotBefore = time.Unix(int64(ts[1]), 0).UTC()
	d.NotAfter = time.Unix(int64(ts[2]), 0).UTC()
	if err := d.check(); err != nil {
		return err
	}
	*s = out
	return nil
}

// delegatedJSON is the idOS field naming (idOSDelegatedWriteGrant plus the
// signature as 0x-hex, the form personal_sign returns).
type delegatedJSON struct {
	ID                  string `json:"id"`
	Owner               string `json:"owner_wallet_identifier"`
	Grantee             string `json:"grantee_wallet_identifier"`
	IssuerPublicKey     string `json:"issuer_public_key"`
	AccessGrantTimelock string `json:"access_grant_timelock"`
	NotBefore           string `json:"not_usable_before"`
	NotAfter            string `json:"not_usable_after"`
	Signature           string `json:"signature"`
}

// MarshalJSON encodes the signed grant with idOS's field names.
func (s *SignedDelegatedGrant) MarshalJSON() ([]byte, error) {
	d := &s.Grant
	if err := d.check(); err != nil {
		return nil, err
	}
	return json.Marshal(delegatedJSON{
		ID: d.ID, Owner: d.Owner, Grantee: d.Grantee,
		IssuerPublicKey:     d.IssuerPublicKey.String(),
		AccessGrantTimelock: d.AccessGrantTimelock.UTC().Format(TimeLayout),
		NotBefore:           d.NotBefore.UTC().Format(TimeLayout),
		NotAfter:            d.NotAfter.UTC().Format(TimeLayout),
		Signature:           "0x" + hex.EncodeToString(s.Signature[:]),
	})
}

// UnmarshalJSON decodes the idOS form strictly: unknown fields, times not
// in TimeLayout, and trailing data are errors. It does not verify the
// signature. On error s is unchanged.
func (s *SignedDelegatedGrant) UnmarshalJSON(b []byte) error {
	var j delegatedJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("vault: delegated grant JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("vault: delegated grant JSON: trailing data")
	}
	var out SignedDelegatedGrant
	d := &out.Grant
	d.ID, d.Owner, d.Grantee = j.ID, j.Owner, j.Grantee
	var err error
	if d.IssuerPublicKey, err = ParseIssuerPublicKeyHex(j.IssuerPublicKey); err != nil {
		return err
	}
	for _, f := range []struct {
		dst *time.Time
		s   string
	}{{&d.AccessGrantTimelock, j.AccessGrantTimelock}, {&d.NotBefore, j.NotBefore}, {&d.NotAfter, j.NotAfter}} {
		t, err := time.Parse(TimeLayout, f.s)
		if err != nil || t.Format(TimeLayout) != f.s {
			return errors.New("vault: delegated grant: time not in the form 2006-01-02T15:04:05Z")
		}
		*f.dst = t
	}
	sig, ok := strings.CutPrefix(j.Signature, "0x")
	if !ok {
		return errors.New("vault: delegated grant: signature is not 0x-hex")
	}
	sb, err := decodeHex(sig, 65)
	if err != nil {
		return fmt.Errorf("vault: delegated grant signature: %w", err)
	}
	copy(out.Signature[:], sb)
	if err := d.check(); err != nil {
		return err
	}
	*s = out
	return nil
}
