package auth

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/httpapi"
	"github.com/keymesh/keymesh/internal/record"
)

// floodClient is an HTTP client whose connections come from ip (a
// 127.0.0.0/8 address), with at most one connection, closed by t's end.
func floodClient(t *testing.T, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext, MaxConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// initiateBatch posts a batch of n keymesh_initiateRegistration requests
// for scope (one registration key for all: a flood needs no more) and
// returns how many opened a challenge, and the errors of the others.
func initiateBatch(t *testing.T, hc *http.Client, url, scope string, key record.PublicKey, n int) (opened int, errs []*api.Error) {
	t.Helper()
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"keymesh_initiateRegistration","params":{"scope":%q,"registrationKey":%q}}`, i, scope, key.String())
	}
	b.WriteByte(']')
	resp, err := hc.Post(url+"/", "application/json", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var rs []api.Response
	if err := json.Unmarshal(raw, &rs); err != nil || len(rs) != n {
		t.Fatalf("HTTP %d: %.300s", resp.StatusCode, raw)
	}
	for _, r := range rs {
		if r.Error != nil {
			errs = append(errs, r.Error)
		} else {
			opened++
		}
	}
	return opened, errs
}

// TestChallengeFloodStaysInItsScope (issue 16): 101 batches of 100
// unauthenticated keymesh_initiateRegistration requests against scope A,
// from 101 addresses, filled the node-wide table of 10,000 challenges and
// every scope's users got -32005 for ChallengeTTL. Now the table is
// partitioned per scope: the flood fills A's part (MaxChallengesPerScope)
// and gets clear -32005 errors naming A, while scope B registers. And one
// address cannot fill a scope's part either (MaxChallengesPerSource): a
// user at another address still registers in B while it floods.
func TestChallengeFloodStaysInItsScope(t *testing.T) {
	e := newEnv(t)
	a, _ := e.scope(record.ModeUser, record.P256)
	b, _ := e.scope(record.ModeUser, record.P256)
	reg := httpapi.NewRegistry()
	Register(reg, e.svc)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Registry: reg}))
	t.Cleanup(srv.Close)
	if _, err := floodClient(t, "127.0.0.2").Get(srv.URL + "/healthz"); err != nil {
		t.Skipf("cannot send from 127.0.0.2 (only 127.0.0.1 on loopback here?): %v", err)
	}
	key := func() record.PublicKey { return key(t, record.Ed25519).Public() }

	floodKey := key()
	opened := 0
	for i := range 101 {
		n, errs := initiateBatch(t, floodClient(t, fmt.Sprintf("127.0.1.%d", i+1)), srv.URL, a, floodKey, 100)
		opened += n
		for _, err := range errs {
			if err.Code != api.CodeLimitExceeded || !strings.Contains(err.Message, "too many open challenges") {
				t.Fatalf("flood refused with %v", err)
			}
		}
	}
	if opened != MaxChallengesPerScope {
		t.Errorf("the flood opened %d challenges in scope A, want its cap %d", opened, MaxChallengesPerScope)
	}
	if _, errs := initiateBatch(t, floodClient(t, "127.0.2.1"), srv.URL, a, key(), 1); len(errs) != 1 || !strings.Contains(errs[0].Message, "in scope "+a) {
		t.Errorf("scope A while flooded: %v, want a limit error naming it", errs)
	}
	// Scope B is not affected.
	if n, errs := initiateBatch(t, floodClient(t, "127.0.0.1"), srv.URL, b, key(), 1); n != 1 {
		t.Fatalf("scope B while A is flooded: %v", errs)
	}

	// One address floods B: it gets MaxChallengesPerSource, then errors
	// naming its address as the reason; a user elsewhere still registers.
	n, errs := initiateBatch(t, floodClient(t, "127.0.3.1"), srv.URL, b, floodKey, 100)
	n2, errs2 := initiateBatch(t, floodClient(t, "127.0.3.1"), srv.URL, b, floodKey, 50)
	if n+n2 != MaxChallengesPerSource || len(errs)+len(errs2) != 150-MaxChallengesPerSource {
		t.Errorf("one address opened %d challenges in scope B, want %d", n+n2, MaxChallengesPerSource)
	}
	for _, err := range append(errs, errs2...) {
		if err.Code != api.CodeLimitExceeded || !strings.Contains(err.Message, "from your address") {
			t.Fatalf("one address refused with %v", err)
		}
	}
	if n, errs := initiateBatch(t, floodClient(t, "127.0.3.2"), srv.URL, b, key(), 1); n != 1 {
		t.Fatalf("scope B while one address floods it: %v", errs)
	}
}

// TestChallengeTableFairShare: when the node-wide table is full (many
// scopes flooded at once), a scope holding fewer challenges than the
// largest still opens one, in place of a largest scope's oldest; expired
// challenges free their scope's and their address's share; a completed
// (taken) challenge frees its place at once.
func TestChallengeTableFairShare(t *testing.T) {
	var tab challengeTable
	e := newEnv(t)
	now := e.clock.now()
	put := func(scope, source string) (*challenge, error) {
		c := &challenge{scope: scope, source: source, expires: now.Add(ChallengeTTL)}
		_, err := tab.put(now, c)
		return c, err
	}
	for s := range MaxChallenges / MaxChallengesPerScope {
		for i := range MaxChallengesPerScope {
			if _, err := put(fmt.Sprintf("s%d", s), ""); err != nil {
				t.Fatalf("scope %d, challenge %d: %v", s, i, err)
			}
		}
	}
	if tab.len() != MaxChallenges {
		t.Fatalf("%d challenges", tab.len())
	}
	if _, err := put("s0", ""); err == nil {
		t.Fatal("a full scope opened one more")
	}
	if _, err := put("quiet", ""); err != nil {
		t.Fatalf("a quiet scope in a full table: %v", err)
	}
	short := 0
	for s := range MaxChallenges / MaxChallengesPerScope {
		if n := tab.scopes[fmt.Sprintf("s%d", s)].Len(); n == MaxChallengesPerScope-1 {
			short++
		}
	}
	if tab.len() != MaxChallenges || short != 1 {
		t.Fatalf("%d held, %d scopes lost one", tab.len(), short)
	}
	// Expiry frees the shares.
	for range MaxChallengesPerSource {
		if _, err := put("quiet", "10.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := put("other", "10.0.0.1"); err == nil || !strings.Contains(err.Error(), "from your address") {
		t.Fatalf("source over its share: %v", err)
	}
	now = now.Add(ChallengeTTL + 1)
	c, err := put("other", "10.0.0.1")
	if err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if tab.len() != 1 || tab.take(c.id) != c || tab.len() != 0 || len(tab.scopes) != 0 || len(tab.sources) != 0 {
		t.Fatalf("after expiry and take: %d held, %d scopes, %d sources", tab.len(), len(tab.scopes), len(tab.sources))
	}
}
