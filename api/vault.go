package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/ethereum/go-ethereum/common"
)

// The data vault service (internal/vaultsvc) over the pure vault library
// (internal/vault): NaCl boxes that an account's owner seals client-side
// with ephemeral sender keys (idOS's stored form, nonce(24) ‖ box and the
// encryptor public key beside it), access grants that carry a copy the
// owner re-encrypted for the grantee, and revocations of grants. Nodes
// store ciphertext only.
//
//	keymesh_vaultPut     SignedRecord (a vault.box record)     → VaultWriteResult
//	keymesh_vaultGrant   SignedRecord (a vault.grant record)   → VaultWriteResult
//	keymesh_vaultRevoke  SignedRecord (a vault.revoke record)  → VaultWriteResult
//	keymesh_vaultGet     VaultGetParams, approved               → VaultItem
//	keymesh_vaultList    VaultListParams, approved              → VaultList
//
// The three writes are records that name the owner's account (Scope,
// Account) and are proven by one of its credentials over the record (a
// plain key's signature, record.AuthSignature, or a passkey assertion
// whose challenge is record.Challenge(kind, body)), exactly as auth's
// account records are: so the approval commits to the record's body, and
// every node checks it itself when it applies the record, pushed or
// caught up. The reads need approval in the X-Keymesh-Auth header
// (ProofsHeader) over VaultReadHash of their params, as the wallet's
// methods do.
const (
	MethodVaultPut    = "keymesh_vaultPut"
	MethodVaultGrant  = "keymesh_vaultGrant"
	MethodVaultRevoke = "keymesh_vaultRevoke"
	MethodVaultGet    = "keymesh_vaultGet"
	MethodVaultList   = "keymesh_vaultList"

	// PeerVaultRevocation is the vault's peer RPC kind: the body is a
	// grant id (32 bytes), the answer the peer's stored revocation record
	// of that grant (the earliest), or empty when it holds none. A node
	// asks every peer before it serves a grant's copy, and checks each
	// record it gets itself.
	PeerVaultRevocation = "vault/revocation/v1"

	// Record kinds of the vault (record.Kind(RecordKindVault…)), in the
	// range 90–99 that the vault reserves of the services' 64–199.
	RecordKindVaultBox    = 90 // VaultBox: a version of a box, written by its owner
	RecordKindVaultGrant  = 91 // VaultGrant: an access grant with the grantee's copy
	RecordKindVaultRevoke = 92 // VaultRevoke: a grant's revocation, final

	VaultKeySize      = 32        // an X25519 public key
	VaultNonceSize    = 24        // the XSalsa20 nonce that starts a content
	MinVaultContent   = 24 + 16   // nonce ‖ tag: the content of an empty message
	MaxVaultContent   = 256 << 10 // bytes of one box's content
	MaxVaultIDLen     = 128       // bytes of scope, account and data ids
	VaultRevokeWindow = 5 * 60    // seconds a revocation's RevokedAt may be from a gateway's clock
	MaxVaultListItems = 1000      // entries of each list of VaultList
	vaultBodyVersion  = 1         // the first byte of every body
	vaultReadTag      = "keymesh/vault/read/v1"
)

// ErrVaultBody is wrapped by every error of the vault's body decoders.
var ErrVaultBody = errors.New("api: malformed vault record body")

// VaultBox is the body of a vault.box record: version Version of the box
// DataID of the account (Scope, Account). Content is nonce(24) ‖
// crypto_box output, sealed with the ephemeral key whose public half is
// EncryptorKey. Version starts at 1; a box's latest version is its
// highest (of two bodies with the same version, the one with the lower
// record id).
type VaultBox struct {
	Scope, Account string
	DataID         string
	Version        uint64
	EncryptorKey   [VaultKeySize]byte
	Content        []byte
}

// VaultGrant is the body of a vault.grant record: the account (Scope,
// Account) lets the account (GranteeScope, GranteeAccount), holder of the
// X25519 key GranteeKey, read a copy of version Version of its box DataID.
// The copy (CopyContent, sealed with CopyEncryptorKey) was made by the
// owner (vault.MakeCopy) and holds the plaintext whose SHA-256 is
// ContentHash. Until LockedUntil (Unix seconds, 0 for none) the grant
// cannot be revoked. A grant is named by its record id (record.Record.ID,
// in hex).
type VaultGrant struct {
	Scope, Account               string
	DataID                       string
	Version                      uint64
	GranteeScope, GranteeAccount string
	GranteeKey                   [VaultKeySize]byte
	LockedUntil                  int64
	ContentHash                  [32]byte
	CopyEncryptorKey             [VaultKeySize]byte
	CopyContent                  []byte
}

// VaultRevoke is the body of a vault.revoke record: the account (Scope,
// Account) revokes its grant Grant (a VaultGrantID) from RevokedAt (Unix
// seconds) on. RevokedAt must not be before the grant's LockedUntil (every
// node checks, from the two records alone); a gateway also refuses one
// more than VaultRevokeWindow from its clock. A revocation is final.
type VaultRevoke struct {
	Scope, Account string
	Grant          [32]byte
	RevokedAt      int64
}

// VaultWriteResult answers the three writes: the record's id (hex; for a
// grant, the grant's id) once n−t+1 nodes stored it.
type VaultWriteResult struct {
	ID string `json:"id"`
}

// VaultGetParams are keymesh_vaultGet's params. The caller is the account
// (Scope, Account) the approval speaks for. Without Grant, it reads its
// own box DataID at Version (0: the latest). With Grant (a grant id, hex),
// it reads that grant's copy, which it may only as the grant's grantee,
// and only until the grant's revocation.
type VaultGetParams struct {
	Scope   string `json:"scope"`
	Account string `json:"account"`
	DataID  string `json:"dataId,omitempty"`
	Version uint64 `json:"version,omitempty"`
	Grant   string `json:"grant,omitempty"`
}

// VaultListParams are keymesh_vaultList's params: the caller's account.
type VaultListParams struct {
	Scope   string `json:"scope"`
	Account string `json:"account"`
}

// VaultItem is a box, or a grant's copy. Content and EncryptorKey are
// standard base64 (idOS's form). For a copy, Grant is set.
type VaultItem struct {
	Scope        string          `json:"scope"`
	Account      string          `json:"account"` // the owner
	DataID       string          `json:"dataId"`
	Version      uint64          `json:"version"`
	EncryptorKey string          `json:"encryptorPublicKey"`
	Content      string          `json:"content"`
	Grant        *VaultGrantInfo `json:"grant,omitempty"`
}

// VaultGrantInfo describes a grant (its copy's content is not included).
type VaultGrantInfo struct {
	ID             string `json:"id"`
	Scope          string `json:"scope"`
	Account        string `json:"account"`
	DataID         string `json:"dataId"`
	Version        uint64 `json:"version"`
	GranteeScope   string `json:"granteeScope"`
	GranteeAccount string `json:"granteeAccount"`
	GranteeKey     string `json:"granteeKey"`  // standard base64
	LockedUntil    int64  `json:"lockedUntil"` // Unix seconds
	ContentHash    string `json:"contentHash"` // hex
	RevokedAt      int64  `json:"revokedAt,omitempty"`
}

// VaultBoxInfo is one of the caller's boxes in a VaultList.
type VaultBoxInfo struct {
	DataID  string `json:"dataId"`
	Version uint64 `json:"version"` // the latest
}

// VaultList is the caller's own: its boxes, the grants it made (revoked
// ones with RevokedAt), and the grants made to it that are not revoked.
type VaultList struct {
	Boxes    []VaultBoxInfo   `json:"boxes"`
	Granted  []VaultGrantInfo `json:"granted"`
	Received []VaultGrantInfo `json:"received"`
}

// VaultReadHash is the operation hash an approval of a vault read commits
// to: OperationHash(method, zero address, SHA-256 of tag ‖ the params'
// fields, each length-prefixed). Both reads name the caller's account, so
// an approval reads exactly one thing for one account.
func VaultReadHash(method string, p VaultGetParams) [32]byte {
	var w vaultWriter
	w.str(vaultReadTag)
	w.str(p.Scope)
	w.str(p.Account)
	w.str(p.DataID)
	w.u64(p.Version)
	w.str(p.Grant)
	return OperationHash(method, common.Address{}, sha256.Sum256(w.b))
}

// CheckVaultAccount checks a scope and account id the vault stores: 1 to
// MaxVaultIDLen bytes each, printable ASCII without '/' (the stricter
// rules are auth's, checked by the node).
func CheckVaultAccount(scope, account string) error {
	if !vaultID(scope) || !vaultID(account) {
		return fmt.Errorf("%w: scope and account must be 1 to %d printable ASCII bytes without '/'", ErrVaultBody, MaxVaultIDLen)
	}
	return nil
}

// CheckVaultDataID checks a data id: a UUID in its 36-character form,
// lowercase (one spelling per id).
func CheckVaultDataID(s string) error {
	if len(s) != 36 {
		return fmt.Errorf("%w: data id must be a lowercase UUID", ErrVaultBody)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%w: data id must be a lowercase UUID", ErrVaultBody)
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return fmt.Errorf("%w: data id must be a lowercase UUID", ErrVaultBody)
			}
		}
	}
	return nil
}

func vaultID(s string) bool {
	if s == "" || len(s) > MaxVaultIDLen {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' || c == '/' {
			return false
		}
	}
	return true
}

func checkContent(c []byte, what string) error {
	if len(c) < MinVaultContent || len(c) > MaxVaultContent {
		return fmt.Errorf("%w: %s of %d bytes, want %d to %d", ErrVaultBody, what, len(c), MinVaultContent, MaxVaultContent)
	}
	return nil
}

// Marshal returns the box's canonical encoding: version(1)=1 ‖
// str(scope) ‖ str(account) ‖ str(data id) ‖ version(8) ‖
// encryptor key(32) ‖ content(4-byte length ‖ bytes); str is a 1-byte
// length and the bytes; integers are big-endian.
func (b *VaultBox) Marshal() []byte {
	var w vaultWriter
	w.u8(vaultBodyVersion)
	w.str(b.Scope)
	w.str(b.Account)
	w.str(b.DataID)
	w.u64(b.Version)
	w.b = append(w.b, b.EncryptorKey[:]...)
	w.bytes(b.Content)
	return w.b
}

// DecodeVaultBox decodes Marshal's output strictly: bad ids, version 0,
// content out of bounds, a short body and trailing bytes are errors
// wrapping ErrVaultBody.
func DecodeVaultBox(p []byte) (*VaultBox, error) {
	r := vaultReader{b: p}
	r.header()
	b := &VaultBox{Scope: r.str(), Account: r.str(), DataID: r.str(), Version: r.u64()}
	r.fixed(b.EncryptorKey[:])
	b.Content = r.bytes()
	if err := r.done(); err != nil {
		return nil, err
	}
	if err := CheckVaultAccount(b.Scope, b.Account); err != nil {
		return nil, err
	}
	if err := CheckVaultDataID(b.DataID); err != nil {
		return nil, err
	}
	if b.Version == 0 {
		return nil, fmt.Errorf("%w: version 0 (versions start at 1)", ErrVaultBody)
	}
	if err := checkContent(b.Content, "content"); err != nil {
		return nil, err
	}
	return b, nil
}

// Marshal returns the grant's canonical encoding: version(1)=1 ‖
// str(scope) ‖ str(account) ‖ str(data id) ‖ version(8) ‖
// str(grantee scope) ‖ str(grantee account) ‖ grantee key(32) ‖
// locked until(8) ‖ content hash(32) ‖ copy encryptor key(32) ‖
// copy content(4-byte length ‖ bytes).
func (g *VaultGrant) Marshal() []byte {
	var w vaultWriter
	w.u8(vaultBodyVersion)
	w.str(g.Scope)
	w.str(g.Account)
	w.str(g.DataID)
	w.u64(g.Version)
	w.str(g.GranteeScope)
	w.str(g.GranteeAccount)
	w.b = append(w.b, g.GranteeKey[:]...)
	w.u64(uint64(g.LockedUntil))
	w.b = append(w.b, g.ContentHash[:]...)
	w.b = append(w.b, g.CopyEncryptorKey[:]...)
	w.bytes(g.CopyContent)
	return w.b
}

// DecodeVaultGrant decodes Marshal's output strictly (errors wrap
// ErrVaultBody): a grant to its own owner, a zero content hash, a negative
// timelock or a copy out of bounds is refused.
func DecodeVaultGrant(p []byte) (*VaultGrant, error) {
	r := vaultReader{b: p}
	r.header()
	g := &VaultGrant{Scope: r.str(), Account: r.str(), DataID: r.str(), Version: r.u64(), GranteeScope: r.str(), GranteeAccount: r.str()}
	r.fixed(g.GranteeKey[:])
	lu := r.u64()
	r.fixed(g.ContentHash[:])
	r.fixed(g.CopyEncryptorKey[:])
	g.CopyContent = r.bytes()
	if err := r.done(); err != nil {
		return nil, err
	}
	if err := CheckVaultAccount(g.Scope, g.Account); err != nil {
		return nil, err
	}
	if err := CheckVaultAccount(g.GranteeScope, g.GranteeAccount); err != nil {
		return nil, err
	}
	if g.Scope == g.GranteeScope && g.Account == g.GranteeAccount {
		return nil, fmt.Errorf("%w: a grant to its own owner", ErrVaultBody)
	}
	if err := CheckVaultDataID(g.DataID); err != nil {
		return nil, err
	}
	if g.Version == 0 {
		return nil, fmt.Errorf("%w: version 0 (versions start at 1)", ErrVaultBody)
	}
	if lu > math.MaxInt64 {
		return nil, fmt.Errorf("%w: timelock out of range", ErrVaultBody)
	}
	g.LockedUntil = int64(lu)
	if g.ContentHash == ([32]byte{}) {
		return nil, fmt.Errorf("%w: no content hash", ErrVaultBody)
	}
	if err := checkContent(g.CopyContent, "copy"); err != nil {
		return nil, err
	}
	return g, nil
}

// Marshal returns the revocation's canonical encoding: version(1)=1 ‖
// str(scope) ‖ str(account) ‖ grant id(32) ‖ revoked at(8).
func (v *VaultRevoke) Marshal() []byte {
	var w vaultWriter
	w.u8(vaultBodyVersion)
	w.str(v.Scope)
	w.str(v.Account)
	w.b = append(w.b, v.Grant[:]...)
	w.u64(uint64(v.RevokedAt))
	return w.b
}

// DecodeVaultRevoke decodes Marshal's output strictly (errors wrap
// ErrVaultBody).
func DecodeVaultRevoke(p []byte) (*VaultRevoke, error) {
	r := vaultReader{b: p}
	r.header()
	v := &VaultRevoke{Scope: r.str(), Account: r.str()}
	r.fixed(v.Grant[:])
	at := r.u64()
	if err := r.done(); err != nil {
		return nil, err
	}
	if err := CheckVaultAccount(v.Scope, v.Account); err != nil {
		return nil, err
	}
	if at > math.MaxInt64 {
		return nil, fmt.Errorf("%w: revocation time out of range", ErrVaultBody)
	}
	v.RevokedAt = int64(at)
	return v, nil
}

// vaultWriter and vaultReader are the bodies' encoding: 1-byte-length
// strings, 4-byte-length byte strings, big-endian integers.
type vaultWriter struct{ b []byte }

func (w *vaultWriter) u8(v byte)    { w.b = append(w.b, v) }
func (w *vaultWriter) u64(v uint64) { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *vaultWriter) str(s string) {
	if len(s) > math.MaxUint8 { // never for a checked id; keeps the encoding decodable
		s = s[:math.MaxUint8]
	}
	w.b = append(w.b, byte(len(s)))
	w.b = append(w.b, s...)
}
func (w *vaultWriter) bytes(p []byte) {
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(len(p)))
	w.b = append(w.b, p...)
}

type vaultReader struct {
	b   []byte
	err error
}

func (r *vaultReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = fmt.Errorf("%w: short body", ErrVaultBody)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *vaultReader) header() {
	if v := r.take(1); v != nil && v[0] != vaultBodyVersion {
		r.err = fmt.Errorf("%w: body version %d, want %d", ErrVaultBody, v[0], vaultBodyVersion)
	}
}

func (r *vaultReader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (r *vaultReader) str() string {
	if p := r.take(1); p != nil {
		return string(r.take(int(p[0])))
	}
	return ""
}

func (r *vaultReader) bytes() []byte {
	p := r.take(4)
	if p == nil {
		return nil
	}
	n := binary.BigEndian.Uint32(p)
	if n > MaxVaultContent {
		r.err = fmt.Errorf("%w: %d bytes of content, at most %d", ErrVaultBody, n, MaxVaultContent)
		return nil
	}
	return bytes.Clone(r.take(int(n)))
}

func (r *vaultReader) fixed(dst []byte) { copy(dst, r.take(len(dst))) }

func (r *vaultReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%w: %d trailing bytes", ErrVaultBody, len(r.b))
	}
	return r.err
}
