package config

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

// TestAPILimits: the api_limits and metrics_listen fields parse, and bad
// values are refused naming the field.
func TestAPILimits(t *testing.T) {
	n := validNode()
	n.MetricsListen = "127.0.0.1:9100"
	n.APILimits = &APILimits{ClientPerSecond: 10, ClientBurst: 20, CeremonyScopePerSecond: -1,
		MaxConns: 100, MaxConnsPerClient: 10, TrustedProxies: []string{"10.0.0.5", "fd00::/64"}}
	b, _ := json.Marshal(n)
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.MetricsListen != "127.0.0.1:9100" || got.APILimits.ClientBurst != 20 || got.APILimits.CeremonyScopePerSecond != -1 {
		t.Fatalf("%+v", got.APILimits)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.5/32"), netip.MustParsePrefix("fd00::/64")}
	if p := got.APILimits.Proxies(); len(p) != 2 || p[0] != want[0] || p[1] != want[1] {
		t.Fatalf("proxies %v", p)
	}
	if (*APILimits)(nil).Proxies() != nil {
		t.Fatal("nil limits have proxies")
	}
	for _, c := range []struct {
		edit func(*Node)
		want string
	}{
		{func(n *Node) { n.MetricsListen = "nope" }, "metrics_listen"},
		{func(n *Node) { n.APILimits = &APILimits{ScopePerSecond: -2} }, "scope_per_second"},
		{func(n *Node) { n.APILimits = &APILimits{ClientBurst: -1} }, "client_burst"},
		{func(n *Node) { n.APILimits = &APILimits{MaxConns: -1} }, "max_conns"},
		{func(n *Node) { n.APILimits = &APILimits{ConnPerSecond: -3} }, "conn_per_second"},
		{func(n *Node) { n.APILimits = &APILimits{ConnBurst: -1} }, "conn_burst"},
		{func(n *Node) { n.APILimits = &APILimits{MaxConns: 10, MaxConnsPerClient: 11} }, "max_conns_per_client"},
		{func(n *Node) { n.APILimits = &APILimits{TrustedProxies: []string{"proxy.example"}} }, "trusted_proxies[0]"},
	} {
		n := validNode()
		c.edit(n)
		b, _ := json.Marshal(n)
		if _, err := Parse(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}
}
