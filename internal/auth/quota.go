package auth

import (
	"context"

	"github.com/keymesh/keymesh/internal/record"
)

// Quota is what one scope may use of a node (issue 16), resolved from the
// scope's config (record.ScopeQuota) with the defaults below for each
// field it leaves zero, so scopes created before quotas existed get the
// defaults.
//
// KeygensInFlight and SignsPerSecond are applied by each node to its own
// work (the wallet's scheduler and its per-scope token bucket as gateway),
// so a scope spread over every gateway of an n-node cluster can reach n
// times SignsPerSecond at most. A node never lets one scope take more than
// its fair share of its MPC concurrency, whatever its quota says.
type Quota struct {
	KeygensInFlight int     // key generations of the scope at once, per node
	SignsPerSecond  float64 // token bucket rate of signatures, per node as gateway
	SignBurst       int     // the bucket's size: SignsPerSecond, at least 1
	MaxAccounts     int     // accounts in the scope
	MaxKeys         int     // wallet keys in the scope
}

// Default quotas, for a scope whose config names none.
const (
	DefaultKeygensInFlight = 2
	DefaultSignsPerSecond  = 50
	DefaultMaxAccounts     = 100_000
	DefaultMaxKeys         = 100_000
)

// MaxSignsPerSecond caps any scope's configured rate: a scope's developer
// sets its quotas, the node's operator this ceiling.
const MaxSignsPerSecond = 1000

// ResolveQuota applies the defaults (and MaxSignsPerSecond) to a scope's
// configured quotas.
func ResolveQuota(c record.ScopeQuota) Quota {
	q := Quota{
		KeygensInFlight: int(c.KeygensInFlight),
		SignsPerSecond:  float64(c.SignsPerSecond),
		MaxAccounts:     int(c.MaxAccounts),
		MaxKeys:         int(c.MaxKeys),
	}
	if q.KeygensInFlight == 0 {
		q.KeygensInFlight = DefaultKeygensInFlight
	}
	if q.SignsPerSecond == 0 {
		q.SignsPerSecond = DefaultSignsPerSecond
	}
	q.SignsPerSecond = min(q.SignsPerSecond, MaxSignsPerSecond)
	q.SignBurst = max(1, int(q.SignsPerSecond))
	if q.MaxAccounts == 0 {
		q.MaxAccounts = DefaultMaxAccounts
	}
	if q.MaxKeys == 0 {
		q.MaxKeys = DefaultMaxKeys
	}
	return q
}

// Quota returns scope's quotas under its current config
// (wallet.Options.Quota), and whether the scope is known here; an unknown
// scope, or a store error, gets the defaults and false.
func (s *Service) Quota(ctx context.Context, scope string) (Quota, bool) {
	_, cfg, err := s.State().Scope(ctx, scope)
	if err != nil {
		return ResolveQuota(record.ScopeQuota{}), false
	}
	return ResolveQuota(cfg.Quota), true
}
