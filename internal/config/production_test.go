package config

import (
	"strings"
	"testing"
)

// TestProductionNodeHosts: production needs node_hosts holding every
// peer's api_url host; hosts are bare names or addresses.
func TestProductionNodeHosts(t *testing.T) {
	ok := validNode()
	ok.Production = true
	ok.NodeHosts = []string{"127.0.0.1", "NODE3.example", "node1.example", "[::1]"}
	if _, err := Parse(mustJSON(t, ok)); err != nil {
		t.Fatalf("valid production config: %v", err)
	}
	dev := validNode()
	dev.NodeHosts = []string{"node1.example"}
	if _, err := Parse(mustJSON(t, dev)); err != nil {
		t.Fatalf("dev config with node_hosts: %v", err)
	}
	for name, c := range map[string]struct {
		hosts  []string
		errHas string
	}{
		"none":         {nil, "production needs node_hosts"},
		"lacks a peer": {[]string{"127.0.0.1"}, `lacks "node3.example"`},
		"a port":       {[]string{"127.0.0.1", "node3.example:443"}, "not a host name"},
		"a URL":        {[]string{"127.0.0.1", "https://node3.example"}, "not a host name"},
		"empty":        {[]string{"127.0.0.1", "node3.example", ""}, "not a host name"},
	} {
		n := validNode()
		n.Production = true
		n.NodeHosts = c.hosts
		_, err := Parse(mustJSON(t, n))
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("%s: %v, want %q", name, err, c.errHas)
		}
	}
}
