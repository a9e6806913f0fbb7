package vaultsvc

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
)

// Record kinds the vault owns.
const (
	KindBox    = record.Kind(api.RecordKindVaultBox)
	KindGrant  = record.Kind(api.RecordKindVaultGrant)
	KindRevoke = record.Kind(api.RecordKindVaultRevoke)
)

// kinds decodes the vault's records and no other kind's.
var kinds = record.Kinds{KindBox: "vault.box", KindGrant: "vault.grant", KindRevoke: "vault.revoke"}

// Store namespaces (api/services.go: "<service>/<name>"). Keys are built
// from checked ids (record.CheckScopeID, record.CheckAccountID: no '/'),
// a data id (a UUID), 16 hex digits of a version and record ids in hex,
// so they never collide, and a prefix lists one account's or one box's.
const (
	nsBox      = "vault/box"      // scope/account/data/version(16 hex)/record id → vault.box body
	nsGrant    = "vault/grant"    // grant id (record id) → vault.grant body
	nsGranted  = "vault/granted"  // owner scope/account/grant id → 1
	nsReceived = "vault/received" // grantee scope/account/grant id → 1
	nsRevoked  = "vault/revoked"  // grant id → revoked at (8 bytes): the earliest of its revocations
	nsRevokeBy = "vault/revokeby" // grant id → that revocation's record, served to peers (PeerVaultRevocation)
	nsApplied  = "vault/applied"  // record id → kind: each body applies once
)

func boxPrefix(scope, account, data string) string { return scope + "/" + account + "/" + data + "/" }
func boxKey(scope, account, data string, version uint64, id [32]byte) string {
	return fmt.Sprintf("%s%016x/%x", boxPrefix(scope, account, data), version, id[:])
}
func acctPrefix(scope, account string) string { return scope + "/" + account + "/" }

// Applier validates and applies the vault's records: the
// replica.Applier of KindBox, KindGrant and KindRevoke. Every node runs it
// on every vault record it stores, pushed or caught up, whoever sent it.
// It reads only the transaction it is given (the vault's state and
// auth's, for the owner's credentials), never the clock, and every write
// is a function of the set of records applied, so nodes that got the
// same records in any order hold the same state:
//
//   - vault.box: proven by a credential of the owner account
//     (auth.VerifyAccountRecord); stored under its version and record id,
//     so two bodies of one version are both kept and the latest is
//     chosen the same way everywhere (highest version, then lowest id).
//   - vault.grant: proven by the owner's credential; the box version it
//     copies must be applied here (else a missing dependency).
//   - vault.revoke: proven by the owner's credential; the grant must be
//     applied here (else a missing dependency) and be the same owner's;
//     RevokedAt must not be before the grant's timelock. The earliest
//     RevokedAt of a grant's revocations is kept; nothing removes it.
type Applier struct{}

var _ replica.Applier = Applier{}

func invalid(kind record.Kind, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", replica.ErrInvalid, kinds[kind], fmt.Sprintf(format, args...))
}

// missing is a record that may apply once another record has arrived.
func missing(kind record.Kind, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s: %s", replica.ErrInvalid, replica.ErrMissing, kinds[kind], fmt.Sprintf(format, args...))
}

// Apply checks rec and writes its effect through tx. A body applied
// before, under any proof, writes nothing and returns an error wrapping
// replica.ErrDuplicate. A record that fails a check writes nothing and
// returns an error wrapping replica.ErrInvalid (and replica.ErrMissing
// when it depends on a record not applied here yet).
func (Applier) Apply(ctx context.Context, tx store.Ops, rec []byte) error {
	r, err := kinds.Unmarshal(rec)
	if err != nil {
		return fmt.Errorf("%w: vault: %v", replica.ErrInvalid, err)
	}
	id := r.ID()
	idKey := hex.EncodeToString(id[:])
	switch _, err := tx.Get(ctx, nsApplied, idKey); {
	case err == nil:
		return fmt.Errorf("vault: %x: %w", id[:8], replica.ErrDuplicate)
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("vault: store: %w", err)
	}
	var writes []kv
	switch r.Kind {
	case KindBox:
		writes, err = applyBox(ctx, tx, r, id)
	case KindGrant:
		writes, err = applyGrant(ctx, tx, r, id)
	case KindRevoke:
		writes, err = applyRevoke(ctx, tx, r, rec)
	default:
		err = invalid(r.Kind, "not a vault record")
	}
	if err != nil {
		return err
	}
	writes = append(writes, kv{nsApplied, idKey, []byte{byte(r.Kind)}})
	for _, w := range writes {
		if err := tx.Put(ctx, w.ns, w.key, w.val); err != nil {
			return fmt.Errorf("vault: store: %w", err)
		}
	}
	return nil
}

type kv struct {
	ns, key string
	val     []byte
}

// owner checks the ids strictly and the record's proof by a credential
// of the account.
func owner(ctx context.Context, tx store.Ops, r *record.Record, scope, account string) error {
	if record.CheckScopeID(scope) != nil || record.CheckAccountID(account) != nil {
		return invalid(r.Kind, "not a scope and account id")
	}
	err := auth.VerifyAccountRecord(ctx, tx, r, scope, account)
	var d *auth.Denial
	switch {
	case err == nil:
		return nil
	case errors.As(err, &d) && d.Missing:
		return missing(r.Kind, "%s", d.Msg)
	case errors.As(err, &d):
		return invalid(r.Kind, "not proven by the owner: %s", d.Msg)
	}
	return err
}

func applyBox(ctx context.Context, tx store.Ops, r *record.Record, id [32]byte) ([]kv, error) {
	b, err := api.DecodeVaultBox(r.Body)
	if err != nil {
		return nil, invalid(r.Kind, "%v", err)
	}
	if err := owner(ctx, tx, r, b.Scope, b.Account); err != nil {
		return nil, err
	}
	return []kv{{nsBox, boxKey(b.Scope, b.Account, b.DataID, b.Version, id), r.Body}}, nil
}

func applyGrant(ctx context.Context, tx store.Ops, r *record.Record, id [32]byte) ([]kv, error) {
	g, err := api.DecodeVaultGrant(r.Body)
	if err != nil {
		return nil, invalid(r.Kind, "%v", err)
	}
	if record.CheckScopeID(g.GranteeScope) != nil || record.CheckAccountID(g.GranteeAccount) != nil {
		return nil, invalid(r.Kind, "the grantee is not a scope and account id")
	}
	if err := owner(ctx, tx, r, g.Scope, g.Account); err != nil {
		return nil, err
	}
	vs, err := tx.List(ctx, nsBox, fmt.Sprintf("%s%016x/", boxPrefix(g.Scope, g.Account, g.DataID), g.Version), 1)
	if err != nil {
		return nil, fmt.Errorf("vault: store: %w", err)
	}
	if len(vs) == 0 {
		return nil, missing(r.Kind, "version %d of box %s is not known here", g.Version, g.DataID)
	}
	gid := hex.EncodeToString(id[:])
	return []kv{
		{nsGrant, gid, r.Body},
		{nsGranted, acctPrefix(g.Scope, g.Account) + gid, []byte{1}},
		{nsReceived, acctPrefix(g.GranteeScope, g.GranteeAccount) + gid, []byte{1}},
	}, nil
}

func applyRevoke(ctx context.Context, tx store.Ops, r *record.Record, rec []byte) ([]kv, error) {
	v, err := api.DecodeVaultRevoke(r.Body)
	if err != nil {
		return nil, invalid(r.Kind, "%v", err)
	}
	if err := owner(ctx, tx, r, v.Scope, v.Account); err != nil {
		return nil, err
	}
	gid := hex.EncodeToString(v.Grant[:])
	g, err := grant(ctx, tx, gid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing(r.Kind, "grant %s is not known here", gid[:16])
	} else if err != nil {
		return nil, err
	}
	if g.Scope != v.Scope || g.Account != v.Account {
		return nil, invalid(r.Kind, "grant %s is another account's", gid[:16])
	}
	if v.RevokedAt < g.LockedUntil {
		return nil, invalid(r.Kind, "grant %s is timelocked until %d; revoked at %d", gid[:16], g.LockedUntil, v.RevokedAt)
	}
	// The earliest revocation stands, in any order (two bodies never
	// tie: the same time for the same grant is the same body).
	if prev, ok, err := revokedAt(ctx, tx, gid); err != nil {
		return nil, err
	} else if ok && prev <= v.RevokedAt {
		return nil, nil
	}
	return []kv{
		{nsRevoked, gid, binary.BigEndian.AppendUint64(nil, uint64(v.RevokedAt))},
		{nsRevokeBy, gid, rec},
	}, nil
}

// grant reads a stored grant; an absent one is store.ErrNotFound.
func grant(ctx context.Context, ops store.Ops, gid string) (*api.VaultGrant, error) {
	b, err := ops.Get(ctx, nsGrant, gid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("vault: store: %w", err)
	}
	g, err := api.DecodeVaultGrant(b)
	if err != nil {
		return nil, fmt.Errorf("vault: store: corrupt grant: %w", err)
	}
	return g, nil
}

// revokedAt returns when the grant's earliest revocation takes effect.
func revokedAt(ctx context.Context, ops store.Ops, gid string) (int64, bool, error) {
	b, err := ops.Get(ctx, nsRevoked, gid)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("vault: store: %w", err)
	case len(b) != 8:
		return 0, false, errors.New("vault: store: corrupt revocation")
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}
