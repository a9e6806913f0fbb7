package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// checkProduction checks NodeHosts: host names or IP addresses (no
// scheme, port or path) and, in production, a list holding every peer's
// api_url host (so that one list copied to every node covers every node).
func (n *Node) checkProduction() error {
	for _, h := range n.NodeHosts {
		bare := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if bare == "" || strings.ContainsAny(bare, "/@?#% \t") || strings.Contains(bare, ":") && net.ParseIP(bare) == nil {
			return fmt.Errorf("node_hosts: %q is not a host name or IP address (no scheme, port or path)", h)
		}
	}
	if !n.Production {
		return nil
	}
	if len(n.NodeHosts) == 0 {
		return fmt.Errorf("production needs node_hosts: the hosts of every node of the cluster, the same list on every node")
	}
	for _, p := range n.Peers {
		u, err := url.Parse(p.APIURL)
		if err != nil {
			continue // reported by the peer checks
		}
		if !slices.ContainsFunc(n.NodeHosts, func(h string) bool { return strings.EqualFold(strings.Trim(h, "[]"), u.Hostname()) }) {
			return fmt.Errorf("node_hosts lacks %q, the host of peer %d's api_url", u.Hostname(), p.ID)
		}
	}
	return nil
}
