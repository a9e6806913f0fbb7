// Package vaultsvc is the data vault on the node's service seam
// (docs/services.md): it stores and serves the boxes, access grants and
// revocations of package vault (the pure library) on a cluster.
//
// Nodes hold ciphertext only. A box is sealed client-side by its owner
// (vault.SealTo, a fresh ephemeral sender key each time, idOS's stored
// form); a grant's copy is re-encrypted client-side by the owner for the
// grantee's X25519 key (vault.MakeCopy). No node ever holds a key that
// opens either: this session's scope is user-held keys, as in idOS.
// Threshold-held user encryption keys (DESIGN.md, "Notes for the
// data-side services": partials s_i·E with DLEQ proofs, sealed to an
// approved requester) are a later step.
//
//   - Record kinds vault.box, vault.grant and vault.revoke
//     (api.RecordKindVault…, 90–92), each written by the owner account of
//     a scope and proven by one of its credentials over the record itself
//     (auth.VerifyAccountRecord), replicated to every node and checked by
//     each node itself (Applier) before its first write, without the
//     clock, to the same state in any order. A malicious node pushing a
//     forged record (a bad proof, another account's grant) gets it
//     refused by every honest node.
//   - A peer RPC kind, vault/revocation/v1: a peer's revocation record of
//     a grant, which the asking node verifies itself.
//   - JSON-RPC methods (api/vault.go): keymesh_vaultPut, keymesh_vaultGrant
//     and keymesh_vaultRevoke check the record at the gateway (the live
//     credential rule, auth.CheckAccountRecord, through
//     auth.AuthorizeSealed for the sealed-scope check and the catch-up
//     retry) and submit it to a write quorum (n−t+1).
//     keymesh_vaultGet and keymesh_vaultList are reads approved like
//     the wallet's operations (auth.AuthorizeSealed over
//     api.VaultReadHash): the owner reads its boxes; a grantee reads a
//     grant's copy, and nothing else; a list shows only the caller's own.
//   - Revocation. A grant cannot be revoked before its timelock: every
//     node refuses a revocation whose RevokedAt is before the grant's
//     LockedUntil, and a gateway also refuses one while its clock is
//     before the timelock or RevokedAt is more than
//     api.VaultRevokeWindow from its clock. A revocation takes effect at
//     its RevokedAt (reads compare it to the clock; applying never does)
//     and is final: no record removes it. Revocations are written to
//     n−t+1 nodes like every record; the check is on the read side:
//     before it serves a copy that it holds no revocation of, a node asks
//     every peer for theirs (vault/revocation/v1, api.PeerVaultRevocation)
//     and checks what it gets as it would apply it. So the two quorums
//     are W = n−t+1 and C = n, and W + C > n + t − 1 (DESIGN.md, "Quorums
//     against a malicious gateway"): an honest node never serves a copy
//     whose revocation was acknowledged. It fails closed: with a peer
//     down or not answering (a malicious one can), grantees cannot read
//     copies until it is back; the owner's own reads are not affected.
//   - What it cannot do: a malicious node holds the copy's ciphertext and
//     can hand it to the grantee after a revocation (the grantee could
//     have kept it anyway). Newer versions are safe from the grantee
//     cryptographically: they are sealed to the owner's key, and only a
//     new grant, made by the owner, re-encrypts one for a grantee.
//
// Store namespaces: vault/box, vault/grant, vault/granted,
// vault/received, vault/revoked, vault/revokeby, vault/applied
// (applier.go).
//
// It is a package of its own, not internal/vault/service, so that the
// library (which the SDK imports) and the node's service read apart, and
// ./internal/vault/... stays the pure library.
package vaultsvc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/transport"
)

// Node is what the vault takes from the node it runs on; *node.Node has
// it.
type Node interface {
	Store() store.Store
	Replica() *replica.Replica
	Transport() *transport.Transport
	Auth() *auth.Service
}

// Service is one node's vault. It implements node.Service.
type Service struct {
	st      store.Store
	submit  func(ctx context.Context, rec []byte) error
	catchUp func(ctx context.Context) error
	tr      *transport.Transport
	auth    *auth.Service
	now     func() time.Time
}

// New returns the vault service of n, which must have a store, a
// replica and auth.
func New(n Node) (*Service, error) {
	if n.Store() == nil || n.Replica() == nil || n.Transport() == nil || n.Auth() == nil {
		return nil, errors.New("vault: the node has no store, replica, transport or auth")
	}
	r := n.Replica()
	return &Service{st: n.Store(), submit: r.Submit, catchUp: r.CatchUp, tr: n.Transport(), auth: n.Auth(), now: time.Now}, nil
}

// Name is "vault".
func (*Service) Name() string { return "vault" }

// RecordKinds: vault.box, vault.grant and vault.revoke, applied by
// Applier.
func (*Service) RecordKinds() map[record.Kind]replica.Applier {
	return map[record.Kind]replica.Applier{KindBox: Applier{}, KindGrant: Applier{}, KindRevoke: Applier{}}
}

// Methods: the five of api/vault.go.
func (s *Service) Methods() []httpapi.Method {
	return []httpapi.Method{
		{Name: api.MethodVaultPut, Handler: httpapi.Handle(s.Put)},
		{Name: api.MethodVaultGrant, Handler: httpapi.Handle(s.Grant)},
		{Name: api.MethodVaultRevoke, Handler: httpapi.Handle(s.Revoke)},
		{Name: api.MethodVaultGet, Handler: httpapi.Handle(s.Get)},
		{Name: api.MethodVaultList, Handler: httpapi.Handle(s.List)},
	}
}

// PeerRPCs: vault/revocation/v1 (api.PeerVaultRevocation).
func (s *Service) PeerRPCs() map[string]transport.Handler {
	return map[string]transport.Handler{api.PeerVaultRevocation: s.handleRevocation}
}

// Start does nothing: the vault has no background work.
func (*Service) Start(context.Context) error { return nil }

// Stop does nothing.
func (*Service) Stop() {}

// Put stores a vault.box record (keymesh_vaultPut).
func (s *Service) Put(ctx context.Context, p api.SignedRecord) (*api.VaultWriteResult, error) {
	r, raw, err := decode(p, KindBox)
	if err != nil {
		return nil, err
	}
	b, err := api.DecodeVaultBox(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	return s.write(ctx, r, raw, api.MethodVaultPut, b.Scope, b.Account)
}

// Grant stores a vault.grant record (keymesh_vaultGrant); the result's
// id is the grant's.
func (s *Service) Grant(ctx context.Context, p api.SignedRecord) (*api.VaultWriteResult, error) {
	r, raw, err := decode(p, KindGrant)
	if err != nil {
		return nil, err
	}
	g, err := api.DecodeVaultGrant(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	return s.write(ctx, r, raw, api.MethodVaultGrant, g.Scope, g.Account)
}

// Revoke stores a vault.revoke record (keymesh_vaultRevoke), refusing it
// while this node's clock is before the grant's timelock or when its
// RevokedAt is more than api.VaultRevokeWindow from the clock.
func (s *Service) Revoke(ctx context.Context, p api.SignedRecord) (*api.VaultWriteResult, error) {
	r, raw, err := decode(p, KindRevoke)
	if err != nil {
		return nil, err
	}
	v, err := api.DecodeVaultRevoke(r.Body)
	if err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	now := s.now().Unix()
	if d := v.RevokedAt - now; d > api.VaultRevokeWindow || d < -api.VaultRevokeWindow {
		return nil, api.Errorf(api.CodeInvalidInput, "vault: revocation time %d is more than %d s from this node's clock", v.RevokedAt, api.VaultRevokeWindow)
	}
	gid := hex.EncodeToString(v.Grant[:])
	g, err := grant(ctx, s.st, gid)
	if errors.Is(err, store.ErrNotFound) {
		_ = s.catchUp(ctx) // written through another node, maybe
		g, err = grant(ctx, s.st, gid)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.Errorf(api.CodeNotFound, "vault: no grant %s", gid)
	} else if err != nil {
		return nil, err
	}
	if now < g.LockedUntil {
		return nil, api.Errorf(api.CodeInvalidInput, "vault: grant %s is timelocked until %s", gid, time.Unix(g.LockedUntil, 0).UTC().Format(time.RFC3339))
	}
	return s.write(ctx, r, raw, api.MethodVaultRevoke, v.Scope, v.Account)
}

func decode(p api.SignedRecord, want record.Kind) (*record.Record, []byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(p.Record)
	if err != nil {
		return nil, nil, api.Errorf(api.CodeInvalidParams, "record must be base64url")
	}
	r, err := kinds.Unmarshal(raw)
	if err != nil {
		return nil, nil, api.Errorf(api.CodeInvalidParams, "record: %v", err)
	}
	if r.Kind != want {
		return nil, nil, api.Errorf(api.CodeInvalidParams, "record is a %s, not a %s", kinds[r.Kind], kinds[want])
	}
	return r, raw, nil
}

// recordAuthorizer answers auth.AuthorizeSealed for a record: whether it
// is proven by a live credential of the account it names.
type recordAuthorizer struct {
	a *auth.Service
	r *record.Record
}

func (ra recordAuthorizer) Authorize(ctx context.Context, op auth.Operation, _ string) (auth.Principal, error) {
	if err := ra.a.CheckAccountRecord(ctx, ra.r, op.Scope, op.Account); err != nil {
		var d *auth.Denial
		if errors.As(err, &d) {
			return auth.Principal{}, d.API()
		}
		return auth.Principal{}, err
	}
	return auth.Principal{Scope: op.Scope, Account: op.Account}, nil
}

// write checks at the gateway that r is proven by a live credential of
// (scope, account), in the scope the request was sealed for, and submits
// it to a write quorum.
func (s *Service) write(ctx context.Context, r *record.Record, raw []byte, method, scope, account string) (*api.VaultWriteResult, error) {
	op := auth.Operation{Scope: scope, Account: account, Method: method}
	if _, err := auth.AuthorizeSealed(ctx, recordAuthorizer{s.auth, r}, s.catchUp, op, ""); err != nil {
		return nil, err
	}
	var q *replica.QuorumError
	switch err := s.submit(ctx, raw); {
	case errors.As(err, &q):
		// The peers' refusal texts are theirs (untrusted): name them only.
		return nil, api.Errorf(api.CodeUnavailable, "record stored on %d of %d nodes, %d needed (refused by %v, down: %v); retry later", q.Stored, q.N, q.Need, q.Refused(), q.Down())
	case errors.Is(err, replica.ErrMissing):
		return nil, api.Errorf(api.CodeNotFound, "%s refused: %v", kinds[r.Kind], trim(err))
	case errors.Is(err, replica.ErrInvalid):
		return nil, api.Errorf(api.CodeInvalidInput, "%s refused: %v", kinds[r.Kind], trim(err))
	case err != nil:
		return nil, err
	}
	id := r.ID()
	return &api.VaultWriteResult{ID: hex.EncodeToString(id[:])}, nil
}

// trim drops the replica's prefixes from an Applier's error.
func trim(err error) string {
	m := err.Error()
	if i := strings.LastIndex(m, "vault."); i >= 0 {
		return m[i:]
	}
	return m
}

// authorize approves a read by the account the params name.
func (s *Service) authorize(ctx context.Context, method string, p api.VaultGetParams) error {
	if record.CheckScopeID(p.Scope) != nil || record.CheckAccountID(p.Account) != nil {
		return api.Errorf(api.CodeInvalidParams, "vault: scope and account must be a scope id and an account id")
	}
	op := auth.Operation{Scope: p.Scope, Account: p.Account, Method: method, Hash: api.VaultReadHash(method, p)}
	if _, err := rand.Read(op.Request[:]); err != nil {
		return err
	}
	_, err := auth.AuthorizeSealed(ctx, s.auth, s.catchUp, op, httpapi.Proofs(ctx))
	return err
}

// Get answers keymesh_vaultGet: the caller's own box, or, with
// p.Grant, a copy granted to the caller and not revoked.
func (s *Service) Get(ctx context.Context, p api.VaultGetParams) (*api.VaultItem, error) {
	if p.Grant != "" {
		return s.getCopy(ctx, p)
	}
	if err := api.CheckVaultDataID(p.DataID); err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "%v", err)
	}
	if err := s.authorize(ctx, api.MethodVaultGet, p); err != nil {
		return nil, err
	}
	b, err := s.box(ctx, p.Scope, p.Account, p.DataID, p.Version)
	if err != nil {
		return nil, err
	}
	return &api.VaultItem{Scope: b.Scope, Account: b.Account, DataID: b.DataID, Version: b.Version,
		EncryptorKey: base64.StdEncoding.EncodeToString(b.EncryptorKey[:]), Content: base64.StdEncoding.EncodeToString(b.Content)}, nil
}

// box returns version v of the account's box (0: the latest): the body
// of the lowest record id among the highest (or asked) version's.
func (s *Service) box(ctx context.Context, scope, account, data string, v uint64) (*api.VaultBox, error) {
	prefix := boxPrefix(scope, account, data)
	if v != 0 {
		prefix += fmt.Sprintf("%016x/", v)
	}
	es, err := s.st.List(ctx, nsBox, prefix, 0)
	if err != nil {
		return nil, fmt.Errorf("vault: store: %w", err)
	}
	if len(es) == 0 {
		return nil, api.Errorf(api.CodeNotFound, "vault: no box %s (version %d) of this account here", data, v)
	}
	// Keys sort by version, then record id: the first of the last
	// version's entries.
	pick := es[len(es)-1]
	ver := pick.Key[:strings.LastIndexByte(pick.Key, '/')]
	for _, e := range es {
		if strings.HasPrefix(e.Key, ver+"/") {
			pick = e
			break
		}
	}
	b, err := api.DecodeVaultBox(pick.Value)
	if err != nil {
		return nil, fmt.Errorf("vault: store: corrupt box: %w", err)
	}
	return b, nil
}

func (s *Service) getCopy(ctx context.Context, p api.VaultGetParams) (*api.VaultItem, error) {
	if len(p.Grant) != 64 || strings.ToLower(p.Grant) != p.Grant {
		return nil, api.Errorf(api.CodeInvalidParams, "vault: grant must be 64 lowercase hex digits")
	}
	if _, err := hex.DecodeString(p.Grant); err != nil {
		return nil, api.Errorf(api.CodeInvalidParams, "vault: grant must be 64 lowercase hex digits")
	}
	if p.DataID != "" || p.Version != 0 {
		return nil, api.Errorf(api.CodeInvalidParams, "vault: a copy is named by its grant alone")
	}
	if err := s.authorize(ctx, api.MethodVaultGet, p); err != nil {
		return nil, err
	}
	g, err := grant(ctx, s.st, p.Grant)
	if errors.Is(err, store.ErrNotFound) {
		_ = s.catchUp(ctx) // written through another node, maybe
		g, err = grant(ctx, s.st, p.Grant)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.Errorf(api.CodeNotFound, "vault: no grant %s to this account", p.Grant)
	} else if err != nil {
		return nil, err
	}
	if g.GranteeScope != p.Scope || g.GranteeAccount != p.Account {
		// The same answer as for no grant: a caller learns nothing of
		// others' grants.
		return nil, api.Errorf(api.CodeNotFound, "vault: no grant %s to this account", p.Grant)
	}
	at, revoked, err := revokedAt(ctx, s.st, p.Grant)
	if err != nil {
		return nil, err
	}
	if !revoked {
		// Every acknowledged revocation is on a peer (or here): ask them
		// all before serving.
		at, revoked, err = s.peersRevokedAt(ctx, p.Grant)
		if err != nil {
			return nil, err
		}
	}
	if revoked && s.now().Unix() >= at {
		return nil, api.Errorf(api.CodeAuthRevoked, "vault: grant %s is revoked", p.Grant)
	}
	info := grantInfo(p.Grant, g, 0)
	return &api.VaultItem{Scope: g.Scope, Account: g.Account, DataID: g.DataID, Version: g.Version,
		EncryptorKey: base64.StdEncoding.EncodeToString(g.CopyEncryptorKey[:]), Content: base64.StdEncoding.EncodeToString(g.CopyContent), Grant: &info}, nil
}

func grantInfo(id string, g *api.VaultGrant, revokedAt int64) api.VaultGrantInfo {
	return api.VaultGrantInfo{ID: id, Scope: g.Scope, Account: g.Account, DataID: g.DataID, Version: g.Version,
		GranteeScope: g.GranteeScope, GranteeAccount: g.GranteeAccount, GranteeKey: base64.StdEncoding.EncodeToString(g.GranteeKey[:]),
		LockedUntil: g.LockedUntil, ContentHash: hex.EncodeToString(g.ContentHash[:]), RevokedAt: revokedAt}
}

// List answers keymesh_vaultList: the caller's boxes (latest versions),
// the grants it made, and the grants made to it that are not revoked.
// It is this node's state: unlike a copy's read, it does not ask the
// peers, so a node that has not caught up with a revocation yet still
// lists the grant (its copy is refused all the same).
func (s *Service) List(ctx context.Context, p api.VaultListParams) (*api.VaultList, error) {
	gp := api.VaultGetParams{Scope: p.Scope, Account: p.Account}
	if err := s.authorize(ctx, api.MethodVaultList, gp); err != nil {
		return nil, err
	}
	out := &api.VaultList{Boxes: []api.VaultBoxInfo{}, Granted: []api.VaultGrantInfo{}, Received: []api.VaultGrantInfo{}}
	prefix := acctPrefix(p.Scope, p.Account)
	es, err := s.st.List(ctx, nsBox, prefix, 0)
	if err != nil {
		return nil, fmt.Errorf("vault: store: %w", err)
	}
	for _, e := range es { // data/version/id, sorted: the last of each data id is its latest
		parts := strings.Split(strings.TrimPrefix(e.Key, prefix), "/")
		if len(parts) != 3 {
			continue
		}
		var v uint64
		if _, err := fmt.Sscanf(parts[1], "%016x", &v); err != nil {
			continue
		}
		if n := len(out.Boxes); n > 0 && out.Boxes[n-1].DataID == parts[0] {
			out.Boxes[n-1].Version = v
		} else if n < api.MaxVaultListItems {
			out.Boxes = append(out.Boxes, api.VaultBoxInfo{DataID: parts[0], Version: v})
		}
	}
	now := s.now().Unix()
	for _, l := range []struct {
		ns       string
		dst      *[]api.VaultGrantInfo
		received bool
	}{{nsGranted, &out.Granted, false}, {nsReceived, &out.Received, true}} {
		es, err := s.st.List(ctx, l.ns, prefix, 0)
		if err != nil {
			return nil, fmt.Errorf("vault: store: %w", err)
		}
		for _, e := range es {
			gid := strings.TrimPrefix(e.Key, prefix)
			g, err := grant(ctx, s.st, gid)
			if err != nil {
				return nil, err
			}
			at, revoked, err := revokedAt(ctx, s.st, gid)
			if err != nil {
				return nil, err
			}
			if !revoked {
				at = 0
			} else if l.received && now >= at {
				continue
			}
			if len(*l.dst) < api.MaxVaultListItems {
				*l.dst = append(*l.dst, grantInfo(gid, g, at))
			}
		}
	}
	return out, nil
}

// peerTimeout bounds one peer's answer to vault/revocation/v1.
const peerTimeout = 2 * time.Second

// peersRevokedAt asks every peer for its revocation of grant gid
// (api.PeerVaultRevocation) and returns the earliest valid one's time.
// A revocation acknowledged by n−t+1 nodes is on at least one honest
// node, and this node asks all n−1 others (with itself, n: the quorum
// rule of DESIGN.md, W + C > n + t − 1), so it fails closed: a peer that
// does not answer makes the read unavailable. A peer that answers with a
// record that does not verify here is malicious, and not the honest
// holder that matters: its answer is dropped.
func (s *Service) peersRevokedAt(ctx context.Context, gid string) (int64, bool, error) {
	id, _ := hex.DecodeString(gid)
	peers := s.tr.Peers()
	type answer struct {
		rec []byte
		err error
	}
	answers := make(chan answer, len(peers))
	for _, p := range peers {
		go func() {
			ctx, cancel := context.WithTimeout(ctx, peerTimeout)
			defer cancel()
			rec, err := s.tr.Call(ctx, p.ID, api.PeerVaultRevocation, id)
			answers <- answer{rec, err}
		}()
	}
	var at int64
	var learnt []byte
	revoked, down := false, 0
	for range peers {
		a := <-answers
		if a.err != nil {
			down++
			continue
		}
		if len(a.rec) == 0 {
			continue
		}
		if t, ok := s.verifyRevocation(ctx, gid, a.rec); ok && (!revoked || t < at) {
			at, revoked, learnt = t, true, a.rec
		}
	}
	if learnt != nil {
		// Keep it (applied here first, then pushed as any record): the
		// next read, and List, need not ask. Best effort: the answer
		// below does not depend on it.
		_ = s.submit(ctx, learnt)
	}
	if down > 0 && !(revoked && s.now().Unix() >= at) {
		return 0, false, api.Errorf(api.CodeUnavailable, "vault: %d peers did not say whether the grant is revoked; retry later", down)
	}
	return at, revoked, nil
}

// verifyRevocation checks a peer's revocation of grant gid as this node
// would apply it (Applier, against its own state, in a transaction that
// is rolled back) and returns its time.
func (s *Service) verifyRevocation(ctx context.Context, gid string, rec []byte) (int64, bool) {
	r, err := kinds.Unmarshal(rec)
	if err != nil || r.Kind != KindRevoke {
		return 0, false
	}
	v, err := api.DecodeVaultRevoke(r.Body)
	if err != nil || hex.EncodeToString(v.Grant[:]) != gid {
		return 0, false
	}
	errRollback := errors.New("roll back")
	err = s.st.Update(ctx, func(tx store.Ops) error {
		if err := (Applier{}).Apply(ctx, tx, rec); err != nil && !errors.Is(err, replica.ErrDuplicate) {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		return 0, false
	}
	return v.RevokedAt, true
}

// handleRevocation answers vault/revocation/v1: body is a grant id (32
// bytes); the answer is the revocation record stored for it, or empty.
func (s *Service) handleRevocation(ctx context.Context, _ uint16, body []byte) ([]byte, error) {
	if len(body) != 32 {
		return nil, fmt.Errorf("vault: a grant id is 32 bytes, not %d", len(body))
	}
	rec, err := s.st.Get(ctx, nsRevokeBy, hex.EncodeToString(body))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return []byte{}, nil
	case err != nil:
		return nil, errors.New("vault: cannot read revocations")
	}
	return rec, nil
}
