package auth

import (
	"testing"

	"github.com/keymesh/keymesh/internal/record"
)

// TestResolveQuota: a config without quotas (every scope made before they
// existed) gets the defaults; set fields override them one by one; the
// operator's ceiling caps the signature rate.
func TestResolveQuota(t *testing.T) {
	d := ResolveQuota(record.ScopeQuota{})
	if d.KeygensInFlight != DefaultKeygensInFlight || d.SignsPerSecond != DefaultSignsPerSecond || d.SignBurst != DefaultSignsPerSecond ||
		d.MaxAccounts != DefaultMaxAccounts || d.MaxKeys != DefaultMaxKeys {
		t.Fatalf("defaults: %+v", d)
	}
	q := ResolveQuota(record.ScopeQuota{KeygensInFlight: 1, MaxKeys: 3})
	if q.KeygensInFlight != 1 || q.MaxKeys != 3 || q.SignsPerSecond != DefaultSignsPerSecond || q.MaxAccounts != DefaultMaxAccounts {
		t.Fatalf("partial: %+v", q)
	}
	if q := ResolveQuota(record.ScopeQuota{SignsPerSecond: 1 << 30}); q.SignsPerSecond != MaxSignsPerSecond || q.SignBurst != MaxSignsPerSecond {
		t.Fatalf("ceiling: %+v", q)
	}
}
