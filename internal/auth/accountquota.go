package auth

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// A scope's account quota (Quota.MaxAccounts, issue 16).
//
// Apply cannot refuse a registration for being over the quota: which
// registrations arrive first differs from node to node, and a node that
// refused one another stored would keep a different state. So Apply
// stores every valid registration as before, and counts: the accounts
// within the quota are the MaxAccounts accounts whose registrations have
// the lowest record ids (an account's own lowest, the one that wins its
// id, State.winningRegistration), a function of the set of stored records
// that every node computes alike. The quota is applied where accounts are
// used and where records come in:
//
//   - SubmitRecord refuses a registration of a new account once the scope
//     holds MaxAccounts accounts (api.CodeLimitExceeded);
//   - Authorize refuses an account beyond the quota (one that a
//     malicious node pushed past a full scope), on every node alike.
//
// Accounts registered before the count existed are neither counted nor
// refused.
const (
	nsAccountOrder = "auth.account.order" // scope/record id → account: every stored registration
	nsAccountCount = "auth.account.count" // scope → u64: accounts registered since the count existed
)

// accountCountWrites returns the writes of a stored registration: its
// entry in the scope's order and, for a new account, the count.
func (s State) accountCountWrites(ctx context.Context, scope, account string, rid [32]byte, newAccount bool) ([]kv, error) {
	ws := []kv{{nsAccountOrder, scope + "/" + hex.EncodeToString(rid[:]), []byte(account)}}
	if newAccount {
		n, err := s.AccountCount(ctx, scope)
		if err != nil {
			return nil, err
		}
		ws = append(ws, kv{nsAccountCount, scope, binary.BigEndian.AppendUint64(nil, n+1)})
	}
	return ws, nil
}

// AccountCount returns the number of accounts of the scope registered
// since the count existed.
func (s State) AccountCount(ctx context.Context, scope string) (uint64, error) {
	v, ok, err := get(ctx, s.ops, nsAccountCount, scope)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("auth: store: corrupt account count")
	}
	return binary.BigEndian.Uint64(v), nil
}

// withinAccountQuota refuses account if it is beyond the scope's account
// quota: the scope holds more than max accounts and account is not among
// the max whose registrations have the lowest record ids. Cheap while the
// scope is within its quota (one read); a scope over it (only a malicious
// node can make one) costs a scan of its registrations.
func (s State) withinAccountQuota(ctx context.Context, scope, account string, max int) error {
	n, err := s.AccountCount(ctx, scope)
	if err != nil || n <= uint64(max) {
		return err
	}
	es, err := s.ops.List(ctx, nsAccountOrder, scope+"/", 0)
	if err != nil {
		return fmt.Errorf("auth: store: %w", err)
	}
	seen := make(map[string]bool, max+1)
	for _, e := range es {
		a := string(e.Value)
		if seen[a] {
			continue // a later registration of an account already ranked
		}
		if a == account {
			if len(seen) < max {
				return nil
			}
			return deny(api.CodeLimitExceeded, "account %s is beyond scope %s's quota of %d accounts (registered after the scope was full)", account, scope, max)
		}
		seen[a] = true
	}
	return nil // registered before the count existed
}

// checkAccountQuota refuses, at submission, a registration of a new
// account in a scope that holds its quota of accounts.
func (s State) checkAccountQuota(ctx context.Context, rec *record.Record) error {
	if rec.Kind != record.AccountRegister {
		return nil
	}
	b, err := record.DecodeAccountRegister(rec.Body)
	if err != nil {
		return nil // Apply judges the form
	}
	_, cfg, err := s.Scope(ctx, b.Scope)
	if err != nil {
		return nil
	}
	if ok, err := s.HasAccount(ctx, b.Scope, b.Account); err != nil || ok {
		return err // another registration of an existing account adds none
	}
	n, err := s.AccountCount(ctx, b.Scope)
	if err != nil {
		return err
	}
	if max := ResolveQuota(cfg.Quota).MaxAccounts; n >= uint64(max) {
		return deny(api.CodeLimitExceeded, "scope %s holds its quota of %d accounts", b.Scope, max)
	}
	return nil
}

// quotaMemo remembers withinAccountQuota's answer per account for the
// scope's epoch, as derivedState does the rest of an account's state:
// every registration that can change an answer (one in a scope at or
// over its quota, cache.go) bumps the scope's epoch in the transaction
// that changes the count, so Authorize reads the count once per epoch,
// not per call.
type quotaMemo struct {
	mu sync.Mutex
	m  map[string]quotaAnswer
}

type quotaAnswer struct {
	epoch uint64
	err   error
}

// withinAccountQuota is State.withinAccountQuota for d's account,
// remembered for d's epoch.
func (s *Service) withinAccountQuota(ctx context.Context, st State, d *derived) error {
	key := d.scope + "/" + d.account
	s.quota.mu.Lock()
	a, ok := s.quota.m[key]
	s.quota.mu.Unlock()
	if ok && a.epoch == d.epoch {
		return a.err
	}
	err := st.withinAccountQuota(ctx, d.scope, d.account, ResolveQuota(d.cfg.Quota).MaxAccounts)
	var den *Denial
	if err != nil && !errors.As(err, &den) {
		return err // a store error is not remembered
	}
	s.quota.mu.Lock()
	if s.quota.m == nil || len(s.quota.m) >= maxCachedAccounts {
		s.quota.m = make(map[string]quotaAnswer)
	}
	if old, ok := s.quota.m[key]; !ok || old.epoch <= d.epoch {
		s.quota.m[key] = quotaAnswer{epoch: d.epoch, err: err}
	}
	s.quota.mu.Unlock()
	return err
}
