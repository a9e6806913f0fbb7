package client

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/vault"
)

// The data vault (api/vault.go). Everything is sealed and opened here,
// on the client, with package vault's pure functions (idOS's box format):
// the nodes store and serve ciphertext, and never see a plaintext or a
// key that opens one.

// VaultKey is a user-held X25519 key pair that boxes are sealed to. It
// never prints its secret; Destroy clears it.
type VaultKey struct{ k *vault.PrivateKey }

// GenerateVaultKey returns a new vault key from crypto/rand.
func GenerateVaultKey() (*VaultKey, error) {
	k, err := vault.GenerateKey()
	if err != nil {
		return nil, err
	}
	return &VaultKey{k: k}, nil
}

// ParseVaultKey returns the vault key whose 32 secret bytes are b
// (tweetnacl's secretKey, used as is). b is copied.
func ParseVaultKey(b []byte) (*VaultKey, error) {
	k, err := vault.NewPrivateKey(b)
	if err != nil {
		return nil, err
	}
	return &VaultKey{k: k}, nil
}

// Public returns the public key in standard base64 (idOS's form).
func (k *VaultKey) Public() string { return k.k.Public().String() }

// Destroy clears the secret; the key must not be used afterwards.
func (k *VaultKey) Destroy() { k.k.Destroy() }

// Format prints the public key only.
func (k *VaultKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, "client.VaultKey("+k.Public()+")") }

// VaultOwner is an account that writes to its vault: signer is one of the
// account's plain-key credentials (it proves every record), ap approves
// its reads, and key is the vault key its boxes are sealed to.
type VaultOwner struct {
	Scope, Account string
	Signer         *Key
	Approver       Approver
	Key            *VaultKey
}

// VaultPut seals plaintext to o.Key with a fresh ephemeral key
// (vault.SealTo) and stores it as version of the box dataID (a lowercase
// UUID; versions start at 1), in a vault.box record proven by o.Signer.
func (c *Client) VaultPut(ctx context.Context, o *VaultOwner, dataID string, version uint64, plaintext []byte) (*api.VaultWriteResult, error) {
	s, err := vault.SealTo(o.Key.k.Public(), plaintext)
	if err != nil {
		return nil, err
	}
	b := api.VaultBox{Scope: o.Scope, Account: o.Account, DataID: dataID, Version: version, EncryptorKey: s.EncryptorPublicKey, Content: s.Content}
	return vaultWrite(ctx, c, o.Scope, api.MethodVaultPut, record.Kind(api.RecordKindVaultBox), b.Marshal(), api.DecodeVaultBox, o.Signer)
}

// vaultWrite checks body with its decoder, signs the record with signer
// and sends it, bound to scope when the client seals its requests.
func vaultWrite[B any](ctx context.Context, c *Client, scope, method string, kind record.Kind, body []byte, decode func([]byte) (B, error), signer *Key) (*api.VaultWriteResult, error) {
	if _, err := decode(body); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	r, err := record.Sign(kind, body, signer.k)
	if err != nil {
		return nil, err
	}
	var out api.VaultWriteResult
	if err := c.Call(WithScope(ctx, scope), method, encodeRecord(r), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VaultGet reads a box of the account ap approves for (version 0: the
// latest), still sealed.
func (c *Client) VaultGet(ctx context.Context, ap Approver, scope, account, dataID string, version uint64) (*api.VaultItem, error) {
	return c.vaultGet(ctx, ap, api.VaultGetParams{Scope: scope, Account: account, DataID: dataID, Version: version})
}

func (c *Client) vaultGet(ctx context.Context, ap Approver, p api.VaultGetParams) (*api.VaultItem, error) {
	op := Operation{Scope: p.Scope, Account: p.Account, Method: api.MethodVaultGet, Hash: api.VaultReadHash(api.MethodVaultGet, p)}
	var out api.VaultItem
	if err := call(ctx, c, ap, op, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VaultOpen reads the owner's box and opens it with o.Key.
func (c *Client) VaultOpen(ctx context.Context, o *VaultOwner, dataID string, version uint64) ([]byte, *api.VaultItem, error) {
	it, err := c.VaultGet(ctx, o.Approver, o.Scope, o.Account, dataID, version)
	if err != nil {
		return nil, nil, err
	}
	s, err := sealedOf(it)
	if err != nil {
		return nil, nil, err
	}
	pt, err := s.Open(o.Key.k)
	if err != nil {
		return nil, nil, err
	}
	return pt, it, nil
}

func sealedOf(it *api.VaultItem) (vault.Sealed, error) {
	ek, err := vault.ParsePublicKeyBase64(it.EncryptorKey)
	if err != nil {
		return vault.Sealed{}, fmt.Errorf("client: vault item: %w", err)
	}
	content, err := base64.StdEncoding.DecodeString(it.Content)
	if err != nil {
		return vault.Sealed{}, errors.New("client: vault item: content is not base64")
	}
	return vault.Sealed{Content: content, EncryptorPublicKey: ek}, nil
}

// VaultGrantee is who a grant lets read a copy: an account, holder of the
// vault key Key (standard base64).
type VaultGrantee struct {
	Scope, Account string
	Key            string
}

// VaultGrant grants g a copy of version (0: the latest) of the owner's
// box dataID: it reads the box, opens it with o.Key, re-seals it to g.Key
// (vault.MakeCopy, checking the content hash) and stores a vault.grant
// record proven by o.Signer. The grant cannot be revoked before
// lockedUntil (the zero time: no timelock). It returns the grant's id.
func (c *Client) VaultGrant(ctx context.Context, o *VaultOwner, dataID string, version uint64, g VaultGrantee, lockedUntil time.Time) (string, error) {
	gk, err := vault.ParsePublicKeyBase64(g.Key)
	if err != nil {
		return "", fmt.Errorf("client: grantee key: %w", err)
	}
	pt, it, err := c.VaultOpen(ctx, o, dataID, version)
	if err != nil {
		return "", err
	}
	h := vault.HashContent(pt)
	clear(pt)
	orig, err := sealedOf(it)
	if err != nil {
		return "", err
	}
	cp, err := vault.MakeCopy(o.Key.k, orig, &vault.Grant{GranteeKey: gk, ContentHash: h})
	if err != nil {
		return "", err
	}
	b := api.VaultGrant{Scope: o.Scope, Account: o.Account, DataID: dataID, Version: it.Version,
		GranteeScope: g.Scope, GranteeAccount: g.Account, GranteeKey: gk, ContentHash: h,
		CopyEncryptorKey: cp.EncryptorPublicKey, CopyContent: cp.Content}
	if !lockedUntil.IsZero() {
		b.LockedUntil = lockedUntil.Unix()
	}
	out, err := vaultWrite(ctx, c, o.Scope, api.MethodVaultGrant, record.Kind(api.RecordKindVaultGrant), b.Marshal(), api.DecodeVaultGrant, o.Signer)
	if err != nil {
		return "", err
	}
	return out.ID, nil
}

// VaultRevoke revokes the owner's grant (its id, hex) from now on. The
// nodes refuse it before the grant's timelock.
func (c *Client) VaultRevoke(ctx context.Context, o *VaultOwner, grantID string) error {
	id, err := hex.DecodeString(grantID)
	if err != nil || len(id) != 32 {
		return errors.New("client: a grant id is 64 hex digits")
	}
	b := api.VaultRevoke{Scope: o.Scope, Account: o.Account, RevokedAt: time.Now().Unix()}
	copy(b.Grant[:], id)
	_, err = vaultWrite(ctx, c, o.Scope, api.MethodVaultRevoke, record.Kind(api.RecordKindVaultRevoke), b.Marshal(), api.DecodeVaultRevoke, o.Signer)
	return err
}

// VaultReadCopy reads the copy of grant grantID made for the account ap
// approves for, and opens it with key, checking it holds the plaintext
// the grant names (its content hash, as the node reports it). A box
// sealed with an ephemeral key does not say who sealed it: that the copy
// is the owner's rests on the node that answers (or, for a credential,
// on its issuer's signatures, package vault's Credential).
func (c *Client) VaultReadCopy(ctx context.Context, ap Approver, scope, account, grantID string, key *VaultKey) ([]byte, error) {
	it, err := c.vaultGet(ctx, ap, api.VaultGetParams{Scope: scope, Account: account, Grant: grantID})
	if err != nil {
		return nil, err
	}
	if it.Grant == nil {
		return nil, errors.New("client: the node answered a copy without its grant")
	}
	h, err := vault.ParseContentHash(it.Grant.ContentHash)
	if err != nil {
		return nil, fmt.Errorf("client: grant: %w", err)
	}
	s, err := sealedOf(it)
	if err != nil {
		return nil, err
	}
	return vault.OpenCopy(key.k, s, &vault.Grant{GranteeKey: key.k.Public(), ContentHash: h})
}

// VaultList lists the account's own: its boxes, the grants it made and
// the grants made to it that are not revoked.
func (c *Client) VaultList(ctx context.Context, ap Approver, scope, account string) (*api.VaultList, error) {
	p := api.VaultListParams{Scope: scope, Account: account}
	op := Operation{Scope: scope, Account: account, Method: api.MethodVaultList,
		Hash: api.VaultReadHash(api.MethodVaultList, api.VaultGetParams{Scope: scope, Account: account})}
	var out api.VaultList
	if err := call(ctx, c, ap, op, p, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
