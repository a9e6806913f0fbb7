package config

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/netguard"
)

// withServices is validNode's JSON with a services section.
func withServices(t *testing.T, services string) []byte {
	b := mustJSON(t, validNode())
	return []byte(strings.TrimSuffix(string(b), "}") + `,"services":` + services + `}`)
}

func TestServicesSection(t *testing.T) {
	n, err := Parse(withServices(t, `{"chain_ids":[1,8453],"sign_timeout":"15s","keygen_timeout":"2m",
		"chain_rpc":"https://rpc.example.org/v1","fetch_timeout":"3s","outbound_allow":["10.20.0.0/16","rpc.internal"]}`))
	if err != nil {
		t.Fatal(err)
	}
	s := n.Services
	if got := s.Chains(); len(got) != 2 || got[0] != 1 || got[1] != 8453 {
		t.Fatalf("chain ids %v", got)
	}
	if s.SignTimeoutOr() != 15*time.Second || s.KeygenTimeoutOr() != 2*time.Minute || s.FetchTimeoutOr() != 3*time.Second {
		t.Fatalf("timeouts %v %v %v", s.SignTimeoutOr(), s.KeygenTimeoutOr(), s.FetchTimeoutOr())
	}
	if s.ChainRPC != "https://rpc.example.org/v1" || !s.OutboundPolicy().HostAllowed("rpc.internal") {
		t.Fatal("chain_rpc or outbound_allow not read")
	}
	// No section: the defaults, public addresses only.
	var none *Services
	if none.SignTimeoutOr() != DefaultSignTimeout || none.Chains() != nil || none.OutboundPolicy().HostAllowed("rpc.internal") {
		t.Fatal("defaults of an absent section")
	}
}

func TestServicesRejects(t *testing.T) {
	for name, sec := range map[string]string{
		"chain id 0":             `{"chain_ids":[0]}`,
		"chain id twice":         `{"chain_ids":[1,1]}`,
		"numeric timeout":        `{"sign_timeout":10}`,
		"bad timeout":            `{"sign_timeout":"ten seconds"}`,
		"zero timeout":           `{"fetch_timeout":"0s"}`,
		"huge timeout":           `{"keygen_timeout":"2h"}`,
		"bad allow entry":        `{"outbound_allow":["10.0.0.0/40"]}`,
		"unknown field":          `{"chain_id":[1]}`,
		"rpc not http":           `{"chain_rpc":"ftp://rpc.example.org"}`,
		"rpc loopback":           `{"chain_rpc":"http://127.0.0.1:8545"}`,
		"rpc metadata":           `{"chain_rpc":"http://169.254.169.254/"}`,
		"rpc private":            `{"chain_rpc":"http://10.1.2.3:8545"}`,
		"rpc mapped loopback":    `{"chain_rpc":"http://[::ffff:127.0.0.1]:8545"}`,
		"rpc with user info":     `{"chain_rpc":"https://u:p@rpc.example.org"}`,
		"rpc outside the prefix": `{"chain_rpc":"http://10.9.0.1:8545","outbound_allow":["10.20.0.0/16"]}`,
	} {
		if _, err := Parse(withServices(t, sec)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if decodeErr := strings.Contains(sec, "timeout\":10") || strings.Contains(sec, "ten") || strings.Contains(sec, "chain_id\""); !decodeErr && !strings.Contains(err.Error(), "services") {
			t.Errorf("%s: error does not name the section: %v", name, err)
		}
	}
	// The operator allows a private chain RPC explicitly.
	if _, err := Parse(withServices(t, `{"chain_rpc":"http://10.20.0.5:8545","outbound_allow":["10.20.0.0/16"]}`)); err != nil {
		t.Errorf("allowed private chain_rpc refused: %v", err)
	}
}

// TestServicesOutbound: the section's client is netguard's: a fetch to a
// loopback server is refused unless outbound_allow names it.
func TestServicesOutbound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	target := "http://" + net.JoinHostPort("localhost", u.Port())
	n, err := Parse(withServices(t, `{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Services.Outbound().Get(target); !errors.Is(err, netguard.ErrRefused) {
		t.Fatalf("loopback fetch without outbound_allow: %v", err)
	}
	n, err = Parse(withServices(t, `{"outbound_allow":["localhost"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := n.Services.Outbound().Get(target)
	if err != nil {
		t.Fatalf("allowed loopback fetch: %v", err)
	}
	resp.Body.Close()
}
