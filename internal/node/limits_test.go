package node

import (
	"testing"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/httpapi"
)

// TestAPIConnLimits: the config's connection rate reaches the listener:
// zero keeps httpapi's default, -1 turns it off, a rate or a burst alone
// keeps the other's default.
func TestAPIConnLimits(t *testing.T) {
	for _, c := range []struct {
		l    *config.APILimits
		want httpapi.Rate
	}{
		{nil, httpapi.Rate{}},
		{&config.APILimits{}, httpapi.Rate{}},
		{&config.APILimits{ConnPerSecond: -1}, httpapi.Rate{PerSecond: -1}},
		{&config.APILimits{ConnPerSecond: 10}, httpapi.Rate{PerSecond: 10, Burst: httpapi.DefaultConnRate.Burst}},
		{&config.APILimits{ConnBurst: 5}, httpapi.Rate{PerSecond: httpapi.DefaultConnRate.PerSecond, Burst: 5}},
		{&config.APILimits{ConnPerSecond: 10, ConnBurst: 40}, httpapi.Rate{PerSecond: 10, Burst: 40}},
	} {
		if got := apiConnLimits(c.l).Rate; got != c.want {
			t.Errorf("%+v: rate %+v, want %+v", c.l, got, c.want)
		}
	}
}
