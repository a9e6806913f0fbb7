package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
)

// shape describes a JSON value by its structure only: object keys, array
// lengths, and each string's length and each number's value class, so
// that two answers of the same shape differ in content only.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s := "{"
		for _, k := range keys {
			s += k + ":" + shape(x[k]) + ","
		}
		return s + "}"
	case []any:
		s := fmt.Sprintf("[%d:", len(x))
		for _, e := range x {
			s += shape(e) + ","
		}
		return s + "]"
	case string:
		return fmt.Sprintf("string(%d)", len(x))
	case float64:
		return fmt.Sprintf("number(%v)", x) // the timeout: the same for all
	default:
		return fmt.Sprintf("%T", x)
	}
}

func shapeOf(t *testing.T, r *api.InitiateResult) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	json.Unmarshal(b, &v)
	return shape(v)
}

// TestInitiateAuthenticationNoEnumeration (issue 16): anyone may call
// keymesh_initiateAuthentication, so its answer must not tell whether an
// account exists. For an unknown account, and for an account whose only
// passkey was revoked, the node answers with the same shape as for an
// account with a passkey (a challenge and one credential id of the same
// length), the same decoy id each time it is asked (a real account's ids
// do not change either), and completing it fails. Before, an unknown
// account got CodeAuthUnknown "has no passkey" at once.
func TestInitiateAuthenticationNoEnumeration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	a := e.register(scope, "alice")
	initiate := func(account string) *api.InitiateResult {
		t.Helper()
		sk := key(t, record.P256)
		r, err := e.svc.InitiateAuthentication(ctx, api.InitiateAuthenticationParams{Scope: scope, Account: account, SessionKey: sk.Public().String(), TTL: 60})
		if err != nil {
			t.Fatalf("initiateAuthentication for %s: %v", account, err)
		}
		return r
	}
	real := initiate(e.acct("alice"))
	if len(real.AllowCredentials) != 1 || real.AllowCredentials[0] != b64.EncodeToString(a.ID) || len(a.ID) != decoyIDLen {
		t.Fatalf("real account: %v", real.AllowCredentials)
	}
	unknown := initiate(e.acct("nobody"))
	if got, want := shapeOf(t, unknown), shapeOf(t, real); got != want {
		t.Fatalf("unknown account's answer differs in shape:\n%s\n%s", got, want)
	}
	if again := initiate(e.acct("nobody")); again.AllowCredentials[0] != unknown.AllowCredentials[0] {
		t.Fatal("the decoy credential id changes between questions; a real one does not")
	}
	if other := initiate(e.acct("someone else")); other.AllowCredentials[0] == unknown.AllowCredentials[0] {
		t.Fatal("two unknown accounts share a decoy id")
	}
	// The decoy's challenge is a real one: completing it with some passkey
	// fails, and creates no session.
	ch, _ := b64.DecodeString(unknown.Challenge)
	stranger := authtest.New(testRPID, testOrigin)
	if _, err := e.svc.CompleteAuthentication(ctx, api.CompleteAuthenticationParams{ChallengeID: unknown.ChallengeID, Credential: stranger.Get(ch)}); err == nil {
		t.Fatal("a decoy challenge completed")
	}
	// The decoy key survives a restart of the service (it is in the
	// store), so the answer does not change then either.
	svc2, err := New(Options{Store: e.st, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	sk := key(t, record.P256)
	r2, err := svc2.InitiateAuthentication(ctx, api.InitiateAuthenticationParams{Scope: scope, Account: e.acct("nobody"), SessionKey: sk.Public().String(), TTL: 60})
	if err != nil || r2.AllowCredentials[0] != unknown.AllowCredentials[0] {
		t.Fatalf("after a restart: %v %v", err, r2)
	}
}
