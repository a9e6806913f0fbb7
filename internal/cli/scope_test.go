package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
)

// TestScopeCommands runs keymesh dev (3 nodes in process on real sockets)
// and drives scope keygen, scope create and account register --delegated
// against it, then checks the result through the SDK on another node.
func TestScopeCommands(t *testing.T) {
	dir := t.TempDir()
	text, _, stop := devRun(t, "--dir", filepath.Join(dir, "cluster"), "--base-port", fmt.Sprint(porttest.Block(t, 6)))
	defer stop()
	urls := map[string]string{}
	for _, m := range nodeLine.FindAllStringSubmatch(text, -1) {
		urls[m[1]] = m[2]
	}
	url := urls["1"]

	keyFile := filepath.Join(dir, "dev.key")
	pub := strings.TrimSpace(mustRun(t, "scope", "keygen", "--out", keyFile, "--alg", "ed25519"))
	if !strings.HasPrefix(pub, "ed25519:") {
		t.Fatalf("keygen printed %q", pub)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", err, st.Mode())
	}
	secret, _ := os.ReadFile(keyFile)
	if strings.Contains(pub, strings.TrimSpace(string(secret))[len("ed25519:"):]) {
		t.Fatal("keygen printed the secret")
	}
	if _, errOut, code := run(t, "scope", "keygen", "--out", keyFile); code == 0 || !strings.Contains(errOut, "not overwriting") {
		t.Fatalf("keygen overwrote a key: %d %s", code, errOut)
	}

	out := mustRun(t, "scope", "create", "--key-file", keyFile, "--url", url, "--rp-id", "localhost", "--origin", "http://localhost:7100", "--mode", "developer")
	var sc api.Scope
	if err := json.Unmarshal([]byte(out), &sc); err != nil {
		t.Fatalf("scope create printed %q: %v", out, err)
	}
	if sc.Mode != "developer" || len(sc.DevKeys) != 1 || sc.DevKeys[0] != pub || sc.AllowRawDigest {
		t.Fatalf("scope %+v", sc)
	}
	out = mustRun(t, "scope", "create", "--key-file", keyFile, "--url", url, "--rp-id", "localhost", "--origin", "http://localhost:7100", "--allow-raw-digest")
	var raw api.Scope
	if err := json.Unmarshal([]byte(out), &raw); err != nil || !raw.AllowRawDigest || raw.Mode != "user" || raw.ID == sc.ID {
		t.Fatalf("scope create --allow-raw-digest printed %q: %v", out, err)
	}

	out = mustRun(t, "account", "register", "--delegated", "--key-file", keyFile, "--url", url, "--scope", sc.ID, "--account", "carol")
	if !strings.Contains(out, `"account": "carol"`) {
		t.Fatalf("account register printed %q", out)
	}
	_, errOut, code := run(t, "account", "register", "--delegated", "--key-file", keyFile, "--url", url, "--scope", sc.ID, "--account", "carol")
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second registration: %d %s", code, errOut)
	}

	// scope update: one key of two cannot change the key set; both can;
	// one changes the mode.
	key2 := filepath.Join(dir, "dev2.key")
	pub2 := strings.TrimSpace(mustRun(t, "scope", "keygen", "--out", key2))
	out = mustRun(t, "scope", "create", "--key-file", keyFile, "--url", url, "--rp-id", "localhost", "--origin", "http://localhost:7100", "--developer-key", pub, "--developer-key", pub2)
	var two api.Scope
	if err := json.Unmarshal([]byte(out), &two); err != nil || two.DevQuorum != 2 {
		t.Fatalf("two-key scope %q: %v", out, err)
	}
	if _, errOut, code := run(t, "scope", "update", "--key-file", keyFile, "--url", url, "--scope", two.ID, "--developer-key", pub); code == 0 || !strings.Contains(errOut, "takes 2 of its 2") {
		t.Fatalf("one key removing the other: %d %s", code, errOut)
	}
	out = mustRun(t, "scope", "update", "--key-file", keyFile, "--url", url, "--scope", two.ID, "--mode", "hybrid")
	if err := json.Unmarshal([]byte(out), &two); err != nil || two.Mode != "hybrid" || two.Seq != 1 || len(two.DevKeys) != 2 {
		t.Fatalf("mode update %q: %v", out, err)
	}
	out = mustRun(t, "scope", "update", "--key-file", keyFile, "--key-file", key2, "--url", url, "--scope", two.ID, "--developer-key", pub2)
	if err := json.Unmarshal([]byte(out), &two); err != nil || len(two.DevKeys) != 1 || two.DevKeys[0] != pub2 || two.Seq != 2 {
		t.Fatalf("quorum update %q: %v", out, err)
	}

	// Quotas: set at create, kept by an update that does not name them,
	// replaced one by one by one that does.
	out = mustRun(t, "scope", "create", "--key-file", keyFile, "--url", url, "--rp-id", "localhost", "--origin", "http://localhost:7100", "--max-signatures-per-second", "7", "--max-accounts", "30")
	var q api.Scope
	if err := json.Unmarshal([]byte(out), &q); err != nil || q.Quota != (api.ScopeQuota{SignaturesPerSecond: 7, MaxAccounts: 30}) {
		t.Fatalf("scope create with quotas printed %q: %v", out, err)
	}
	out = mustRun(t, "scope", "update", "--key-file", keyFile, "--url", url, "--scope", q.ID, "--session-ttl", "2h")
	q = api.Scope{ID: q.ID}
	if err := json.Unmarshal([]byte(out), &q); err != nil || q.Quota != (api.ScopeQuota{SignaturesPerSecond: 7, MaxAccounts: 30}) || q.SessionTTL != 7200 {
		t.Fatalf("an update naming no quota changed them: %q: %v", out, err)
	}
	out = mustRun(t, "scope", "update", "--key-file", keyFile, "--url", url, "--scope", q.ID, "--max-keys", "9", "--max-accounts", "0")
	q = api.Scope{}
	if err := json.Unmarshal([]byte(out), &q); err != nil || q.Quota != (api.ScopeQuota{SignaturesPerSecond: 7, MaxKeys: 9}) {
		t.Fatalf("quota update printed %q: %v", out, err)
	}

	// The gateway (node 1) has them; so does the SDK's view through it.
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetScope(context.Background(), sc.ID)
	if err != nil || got.ID != sc.ID {
		t.Fatalf("GetScope: %+v %v", got, err)
	}

	// Bad input: clear errors, nothing sent.
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("p256:nope"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"scope", "keygen"}, "--out is required"},
		{[]string{"scope", "keygen", "--out", filepath.Join(dir, "x.key"), "--alg", "rsa"}, "want p256 or ed25519"},
		{[]string{"scope", "create", "--url", url}, "--key-file is required"},
		{[]string{"scope", "create", "--key-file", bad, "--url", url}, "not a key written by keymesh"},
		{[]string{"scope", "create", "--key-file", keyFile, "--url", url}, "--rp-id and at least one --origin"},
		{[]string{"scope", "create", "--key-file", keyFile, "--url", url, "--rp-id", "x", "--origin", "https://x", "--mode", "anarchy"}, "want user, developer or hybrid"},
		{[]string{"account", "register", "--key-file", keyFile, "--scope", sc.ID, "--account", "d"}, "only --delegated"},
		{[]string{"account", "register", "--delegated", "--key-file", keyFile, "--url", url, "--scope", sc.ID, "--account", "bad name"}, "account id must be"},
		{[]string{"account", "register", "--delegated", "--key-file", keyFile, "--url", url, "--scope", strings.Repeat("0", 32), "--account", "d"}, "unknown scope"},
	} {
		_, errOut, code := run(t, tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("keymesh %s: exit %d, stderr %q; want %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
		if strings.Contains(errOut, strings.TrimSpace(string(secret))) {
			t.Fatal("an error printed the secret key")
		}
	}
}
