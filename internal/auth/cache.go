package auth

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"github.com/keymesh/keymesh/internal/record"
)

// nsEpoch holds, per scope, how many records Apply applied to the scope:
// the token that Authorize's per-account cache (accountCache) is checked
// against. Every change to a scope's or account's state is an Apply, which
// raises it in the same transaction, so a cached entry is used only while
// no record has been applied to its scope since. It is the count of the
// scope's applied records, so the same on every node holding the same
// records, whatever their order.
const nsEpoch = "auth.epoch" // scope → count of applied records (u64)

// recordScope returns the scope a record body belongs to.
func recordScope(body any) string {
	switch b := body.(type) {
	case *record.ScopeCreateBody:
		return b.ScopeID()
	case *record.ScopeUpdateBody:
		return b.Scope
	case *record.AccountRegisterBody:
		return b.Scope
	case *record.CredentialAddBody:
		return b.Scope
	case *record.CredentialRevokeBody:
		return b.Scope
	case *record.SessionCreateBody:
		return b.Scope
	case *record.SessionRevokeBody:
		return b.Scope
	case *record.AccountModeBody:
		return b.Scope
	}
	return ""
}

// epochWrite returns the write raising the scope's epoch.
func (s State) epochWrite(ctx context.Context, scope string) (kv, error) {
	v, _, err := get(ctx, s.ops, nsEpoch, scope)
	if err != nil {
		return kv{}, err
	}
	var n uint64
	if len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return kv{nsEpoch, scope, binary.BigEndian.AppendUint64(nil, n+1)}, nil
}

// epoch returns the scope's epoch (0 before its first record under this
// build).
func (s State) epoch(ctx context.Context, scope string) (uint64, error) {
	v, _, err := get(ctx, s.ops, nsEpoch, scope)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// maxCachedAccounts bounds accountCache; when full it is emptied (a miss
// only costs the store reads it saves).
const maxCachedAccounts = 4096

// accountCache remembers, per account, the state Authorize derives from
// the store (the scope's config, the account's mode, which credentials
// are live, which sessions are revoked) at one epoch of the scope. It
// holds only public data.
type accountCache struct {
	mu sync.Mutex
	m  map[string]*derived
}

// derived is one account's derived state at an epoch of its scope. The
// credential and session answers are filled in as Authorize asks.
type derived struct {
	scope, account string
	epoch          uint64
	seq            uint64
	cfg            *record.ScopeConfig
	mode           record.Mode

	mu       sync.Mutex
	creds    map[string]credAnswer
	sessions map[[32]byte]bool
}

type credAnswer struct {
	c   *record.Credential
	err error
}

// derivedState returns the account's derived state at the scope's
// current epoch: cached if computed at this epoch, computed otherwise.
// The epoch is read first: whatever is read after it is at least as new,
// so an entry never holds state older than its epoch.
func (s *Service) derivedState(ctx context.Context, st State, scope, account string) (*derived, error) {
	ep, err := st.epoch(ctx, scope)
	if err != nil {
		return nil, err
	}
	key := scope + "/" + account
	s.accounts.mu.Lock()
	d := s.accounts.m[key]
	s.accounts.mu.Unlock()
	if d != nil && d.epoch == ep {
		return d, nil
	}
	seq, cfg, err := st.Scope(ctx, scope)
	if err != nil {
		return nil, err
	}
	// The account's mode is the one it was registered under (and moved
	// to with its holder's consent), not the scope's current one.
	mode, err := st.AccountMode(ctx, scope, account, cfg)
	if err != nil {
		return nil, err
	}
	d = &derived{scope: scope, account: account, epoch: ep, seq: seq, cfg: cfg, mode: mode,
		creds: map[string]credAnswer{}, sessions: map[[32]byte]bool{}}
	s.accounts.mu.Lock()
	if s.accounts.m == nil || len(s.accounts.m) >= maxCachedAccounts {
		s.accounts.m = make(map[string]*derived)
	}
	if old := s.accounts.m[key]; old == nil || old.epoch <= ep {
		s.accounts.m[key] = d
	}
	s.accounts.mu.Unlock()
	return d, nil
}

// credential is State.credential (a live credential of the account, or a
// Denial), remembered for the entry's epoch.
func (d *derived) credential(st State) func(ctx context.Context, scope, account string, id []byte) (*record.Credential, error) {
	return func(ctx context.Context, scope, account string, id []byte) (*record.Credential, error) {
		if scope != d.scope || account != d.account {
			return st.credential(ctx, scope, account, id)
		}
		k := hex.EncodeToString(id)
		d.mu.Lock()
		a, ok := d.creds[k]
		d.mu.Unlock()
		if ok {
			return a.c, a.err
		}
		c, err := st.credential(ctx, scope, account, id)
		if _, denied := err.(*Denial); err != nil && !denied {
			return nil, err // a store failure is not remembered
		}
		d.mu.Lock()
		d.creds[k] = credAnswer{c, err}
		d.mu.Unlock()
		return c, err
	}
}

// sessionRevoked is State.SessionRevoked, remembered for the entry's
// epoch.
func (d *derived) sessionRevoked(ctx context.Context, st State, id [32]byte) (bool, error) {
	d.mu.Lock()
	r, ok := d.sessions[id]
	d.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := st.SessionRevoked(ctx, d.scope, d.account, id)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	d.sessions[id] = r
	d.mu.Unlock()
	return r, nil
}
