package auth

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"github.com/keymesh/keymesh/internal/record"
)

// The tokens that Authorize's per-account cache (accountCache) is checked
// against. Every change to a scope's or account's state is an Apply,
// which raises one of them in the same transaction, so a cached entry is
// used only while nothing it was derived from has changed:
//
//   - an account's epoch (nsAccountEpoch) counts the records applied to
//     that account: a registration, credential.add, credential.revoke,
//     session.create, session.revoke or account.mode touches the state of
//     the one account it names (its registrations, credentials and their
//     origins, revocations, sessions and mode records: every key of them
//     starts with scope/account), so it evicts that account's entry only;
//   - a scope's epoch (nsEpoch) counts the records that change what every
//     account of the scope derives from: scope.create and scope.update
//     (the config, the developer keys every account's credentials are
//     checked against, the modes accounts are registered under), and a
//     registration once the scope holds its quota of accounts or more,
//     when a new account can push another one beyond the quota
//     (accountquota.go; while the scope is within its quota, every
//     account is within it, whoever registers).
//
// An entry holds both tokens as read before the state it derives, and is
// used only while both are unchanged. Before per-account tokens, every
// record raised the scope's epoch, so one record evicted every account
// of a busy scope (BenchmarkAuthorizeBusyScope).
const (
	nsEpoch        = "auth.epoch"         // scope → count of scope-wide changes (u64)
	nsAccountEpoch = "auth.epoch.account" // scope/account → count of the account's applied records (u64)
)

// recordAccount returns the account a record body touches, if it touches
// one only ("" for scope.create and scope.update).
func recordAccount(body any) string {
	switch b := body.(type) {
	case *record.AccountRegisterBody:
		return b.Account
	case *record.CredentialAddBody:
		return b.Account
	case *record.CredentialRevokeBody:
		return b.Account
	case *record.SessionCreateBody:
		return b.Account
	case *record.SessionRevokeBody:
		return b.Account
	case *record.AccountModeBody:
		return b.Account
	}
	return ""
}

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

// epochWrites returns the writes raising the epochs a record body changes
// (applied in the transaction that applies it): its account's, and its
// scope's if it changes what every account of the scope derives.
func (s State) epochWrites(ctx context.Context, body any) ([]kv, error) {
	scope, account := recordScope(body), recordAccount(body)
	if scope == "" {
		return nil, nil
	}
	var ws []kv
	scopeWide := account == ""
	if account != "" {
		w, err := s.raise(ctx, nsAccountEpoch, acctKey(scope, account))
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
		if _, ok := body.(*record.AccountRegisterBody); ok {
			if scopeWide, err = s.atAccountQuota(ctx, scope); err != nil {
				return nil, err
			}
		}
	}
	if scopeWide {
		w, err := s.raise(ctx, nsEpoch, scope)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// atAccountQuota reports whether a registration may change which accounts
// of the scope are within its account quota (withinAccountQuota): the
// scope holds its quota of accounts or more. Below it every account is
// within the quota, before and after one more registers.
func (s State) atAccountQuota(ctx context.Context, scope string) (bool, error) {
	_, cfg, err := s.Scope(ctx, scope)
	if err != nil {
		return false, err
	}
	n, err := s.AccountCount(ctx, scope)
	if err != nil {
		return false, err
	}
	return n+1 > uint64(ResolveQuota(cfg.Quota).MaxAccounts), nil
}

// raise returns the write adding one to a counter.
func (s State) raise(ctx context.Context, ns, key string) (kv, error) {
	n, err := s.counter(ctx, ns, key)
	if err != nil {
		return kv{}, err
	}
	return kv{ns, key, binary.BigEndian.AppendUint64(nil, n+1)}, nil
}

// counter reads a counter (0 if none).
func (s State) counter(ctx context.Context, ns, key string) (uint64, error) {
	v, _, err := get(ctx, s.ops, ns, key)
	if err != nil || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// epoch returns the scope's epoch (0 before its first record under this
// build).
func (s State) epoch(ctx context.Context, scope string) (uint64, error) {
	return s.counter(ctx, nsEpoch, scope)
}

// accountEpoch returns the account's epoch (0 before its first record
// under this build).
func (s State) accountEpoch(ctx context.Context, scope, account string) (uint64, error) {
	return s.counter(ctx, nsAccountEpoch, acctKey(scope, account))
}

// maxCachedAccounts bounds accountCache; when full it is emptied (a miss
// only costs the store reads it saves).
const maxCachedAccounts = 4096

// accountCache remembers, per account, the state Authorize derives from
// the store (the scope's config, the account's mode, which credentials
// are live, which sessions are revoked) at one epoch of the scope and of
// the account. It holds only public data.
type accountCache struct {
	mu sync.Mutex
	m  map[string]*derived
}

// derived is one account's derived state at an epoch of its scope (epoch)
// and of the account (aepoch). The credential and session answers are
// filled in as Authorize asks.
type derived struct {
	scope, account string
	epoch, aepoch  uint64
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

// derivedState returns the account's derived state at the scope's and
// the account's current epochs: cached if computed at these epochs,
// computed otherwise. The epochs are read first: whatever is read after
// them is at least as new, so an entry never holds state older than its
// epochs.
func (s *Service) derivedState(ctx context.Context, st State, scope, account string) (*derived, error) {
	ep, err := st.epoch(ctx, scope)
	if err != nil {
		return nil, err
	}
	aep, err := st.accountEpoch(ctx, scope, account)
	if err != nil {
		return nil, err
	}
	key := scope + "/" + account
	s.accounts.mu.Lock()
	d := s.accounts.m[key]
	s.accounts.mu.Unlock()
	if d != nil && d.epoch == ep && d.aepoch == aep {
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
	d = &derived{scope: scope, account: account, epoch: ep, aepoch: aep, seq: seq, cfg: cfg, mode: mode,
		creds: map[string]credAnswer{}, sessions: map[[32]byte]bool{}}
	s.accounts.mu.Lock()
	if s.accounts.m == nil || len(s.accounts.m) >= maxCachedAccounts {
		s.accounts.m = make(map[string]*derived)
	}
	if old := s.accounts.m[key]; old == nil || old.epoch <= ep && old.aepoch <= aep {
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
