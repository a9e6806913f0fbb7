package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

const (
	testRPID   = "localhost"
	testOrigin = "http://localhost:7100"
)

var b64 = base64.RawURLEncoding

// clock is a settable clock for the Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	st    store.Store
	svc   *Service
	clock *clock
	// created holds the scope.create record of each scope made by scope.
	created map[string][]byte
	// regKeys holds the registration key of each name given to acct.
	regKeys map[string]*record.PrivateKey
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func newEnv(t testing.TB) *env {
	st := openStore(t)
	c := &clock{t: time.Now()}
	svc, err := New(Options{Store: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, svc: svc, clock: c}
}

func key(t testing.TB, alg record.Alg) *record.PrivateKey {
	k, err := record.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func code(err error) int {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func wantCode(t *testing.T, err error, want int, what string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("%s: got %v (code %d), want code %d", what, err, got, want)
	}
}

// scope creates a scope in mode m with one developer key.
func (e *env) scope(m record.Mode, alg record.Alg) (string, *record.PrivateKey) {
	e.t.Helper()
	dev := key(e.t, alg)
	b := &record.ScopeCreateBody{Config: record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: m, SessionTTL: 3600, DevKeys: []record.PublicKey{dev.Public()}}}
	rand.Read(b.Nonce[:])
	r, err := record.Sign(record.ScopeCreate, b.Marshal(), dev)
	if err != nil {
		e.t.Fatal(err)
	}
	sc, err := e.svc.CreateScope(context.Background(), api.SignedRecord{Record: b64.EncodeToString(r.Marshal())})
	if err != nil {
		e.t.Fatal(err)
	}
	if sc.ID != b.ScopeID() || sc.Mode != m.String() {
		e.t.Fatalf("scope %+v", sc)
	}
	if e.created == nil {
		e.created = map[string][]byte{}
	}
	e.created[sc.ID] = r.Marshal()
	return sc.ID, dev
}

// acct returns the account id a passkey self-registration of name takes:
// its registration key's (record.DerivedAccountID), one key per name.
func (e *env) acct(name string) string {
	e.t.Helper()
	if e.regKeys == nil {
		e.regKeys = map[string]*record.PrivateKey{}
	}
	k, ok := e.regKeys[name]
	if !ok {
		k = key(e.t, record.P256)
		e.regKeys[name] = k
	}
	return record.DerivedAccountID(k.Public())
}

// register registers the account of name (e.acct) with a passkey
// through the RPC flow.
func (e *env) register(scope, name string) *authtest.Authenticator {
	e.t.Helper()
	ctx := context.Background()
	a := authtest.New(testRPID, testOrigin)
	account := e.acct(name)
	regKey := e.regKeys[name]
	init, err := e.svc.InitiateRegistration(ctx, api.InitiateRegistrationParams{Scope: scope, Account: account, RegistrationKey: regKey.Public().String()})
	if err != nil {
		e.t.Fatal(err)
	}
	ch, _ := b64.DecodeString(init.Challenge)
	resp := a.Create(ch)
	sig, err := regKey.Sign(record.RegistrationMessage(ch, resp))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.svc.CompleteRegistration(ctx, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: resp, Signature: b64.EncodeToString(sig)}); err != nil {
		e.t.Fatal(err)
	}
	return a
}

type session struct {
	scope, account string
	key            *record.PrivateKey
	rec            string
}

// login authenticates with the passkey and returns a session.
func (e *env) login(a *authtest.Authenticator, scope, account string) *session {
	e.t.Helper()
	ctx := context.Background()
	sk := key(e.t, record.P256)
	init, err := e.svc.InitiateAuthentication(ctx, api.InitiateAuthenticationParams{Scope: scope, Account: account, SessionKey: sk.Public().String(), TTL: 60})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(init.AllowCredentials) != 1 || init.AllowCredentials[0] != b64.EncodeToString(a.ID) {
		e.t.Fatalf("allowCredentials %v", init.AllowCredentials)
	}
	ch, _ := b64.DecodeString(init.Challenge)
	s, err := e.svc.CompleteAuthentication(ctx, api.CompleteAuthenticationParams{ChallengeID: init.ChallengeID, Credential: a.Get(ch)})
	if err != nil {
		e.t.Fatal(err)
	}
	return &session{scope: scope, account: account, key: sk, rec: s.Record}
}

func approval(scope, account string, op Operation, now time.Time) *record.Approval {
	a := &record.Approval{Scope: scope, Account: account, Method: op.Method, Hash: op.Hash, Expiry: now.Add(2 * time.Minute).Unix()}
	rand.Read(a.Nonce[:])
	return a
}

func sign(t testing.TB, k *record.PrivateKey, a *record.Approval) string {
	sig, err := k.Sign(a.SigningMessage())
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(sig)
}

func (s *session) proof(t testing.TB, op Operation, now time.Time) Proof {
	a := approval(s.scope, s.account, op, now)
	return Proof{Approval: b64.EncodeToString(a.Marshal()), Session: s.rec, Sig: sign(t, s.key, a)}
}

func devProof(t testing.TB, dev *record.PrivateKey, scope, account string, op Operation, now time.Time) Proof {
	a := approval(scope, account, op, now)
	return Proof{Approval: b64.EncodeToString(a.Marshal()), Developer: dev.Public().String(), Sig: sign(t, dev, a)}
}

func header(ps ...Proof) string { return (&Proofs{Approvals: ps}).Encode() }

func op(scope, account string, n byte) Operation {
	o := Operation{Scope: scope, Account: account, Method: "personal_sign"}
	o.Hash[0] = n
	o.Request[0] = n
	return o
}

func TestSessionApproval(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	a := e.register(scope, "alice")
	s := e.login(a, scope, e.acct("alice"))
	o := op(scope, e.acct("alice"), 1)
	p, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, e.clock.now())))
	if err != nil {
		t.Fatal(err)
	}
	if p != (Principal{Scope: scope, Account: e.acct("alice")}) {
		t.Fatalf("principal %+v", p)
	}
	// eth_accounts-style operation without an account: the approval names it.
	o2 := op(scope, "", 2)
	if p, err := e.svc.Authorize(ctx, o2, header(s.proof(t, o2, e.clock.now()))); err != nil || p.Account != e.acct("alice") {
		t.Fatalf("no-account op: %+v %v", p, err)
	}
	// The session record was stored (replicated) too.
	es, err := e.st.List(ctx, nsSession, scope+"/"+e.acct("alice")+"/", 0)
	if err != nil || len(es) != 1 {
		t.Fatalf("sessions stored: %d %v", len(es), err)
	}
}

func TestDenials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.Ed25519)
	other, _ := e.scope(record.ModeUser, record.P256)
	a := e.register(scope, "alice")
	s := e.login(a, scope, e.acct("alice"))
	now := e.clock.now

	t.Run("missing", func(t *testing.T) {
		_, err := e.svc.Authorize(ctx, op(scope, e.acct("alice"), 1), "")
		wantCode(t, err, api.CodeAuthMissing, "no header")
		_, err = e.svc.Authorize(ctx, op(scope, e.acct("alice"), 1), "!!")
		wantCode(t, err, api.CodeAuthBadProof, "garbage header")
	})
	t.Run("wrong scope", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 3)
		p := s.proof(t, o, now())
		o.Scope = other
		_, err := e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthWrongScope, "approval for another scope")
		o.Scope, o.Account = scope, "bob"
		_, err = e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthWrongScope, "approval for another account")
	})
	t.Run("wrong operation", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 4)
		p := s.proof(t, o, now())
		o.Hash[1] = 1
		_, err := e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthWrongOperation, "approval for another hash")
		o = op(scope, e.acct("alice"), 4)
		o.Method = "eth_signTransaction"
		_, err = e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthWrongOperation, "approval for another method")
	})
	t.Run("replayed nonce", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 5)
		h := header(s.proof(t, o, now()))
		if _, err := e.svc.Authorize(ctx, o, h); err != nil {
			t.Fatal(err)
		}
		// The gateway's retry with another signer set: same hash, same request.
		if _, err := e.svc.Authorize(ctx, o, h); err != nil {
			t.Fatalf("retry of the same request: %v", err)
		}
		o.Request[1] = 1
		_, err := e.svc.Authorize(ctx, o, h)
		wantCode(t, err, api.CodeAuthReplay, "same approval, new request")

		// Releasing for the new request (which recorded nothing) changes
		// nothing; releasing for the request that recorded the nonce
		// frees the approval for another request, once.
		if err := e.svc.ReleaseNonces(ctx, o, h); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Authorize(ctx, o, h)
		wantCode(t, err, api.CodeAuthReplay, "released for a request that did not hold it")
		first := o
		first.Request[1] = 0
		if err := e.svc.ReleaseNonces(ctx, first, h); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Authorize(ctx, o, h); err != nil {
			t.Fatalf("the approval after its request released it: %v", err)
		}
		_, err = e.svc.Authorize(ctx, first, h)
		wantCode(t, err, api.CodeAuthReplay, "the released request again, after another used the approval")
	})
	t.Run("signature over another payload", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 6)
		p := s.proof(t, o, now())
		q := s.proof(t, o, now()) // another nonce
		p.Sig = q.Sig
		_, err := e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthBadProof, "session signature over another approval")
	})
	t.Run("developer key in user mode", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 7)
		_, err := e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, e.acct("alice"), o, now())))
		wantCode(t, err, api.CodeAuthIncomplete, "user-mode scope with only the developer's approval")
	})
	t.Run("expired approval", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 8)
		p := s.proof(t, o, now().Add(-3*time.Minute))
		_, err := e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthExpired, "expired approval")
	})
	t.Run("per-operation passkey", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 9)
		ap := approval(scope, e.acct("alice"), o, now())
		p := Proof{Approval: b64.EncodeToString(ap.Marshal()), Passkey: a.Get(ap.Challenge())}
		if _, err := e.svc.Authorize(ctx, o, header(p)); err != nil {
			t.Fatalf("passkey approval: %v", err)
		}
		// An assertion over another approval does not approve this one.
		ap2 := approval(scope, e.acct("alice"), o, now())
		p2 := Proof{Approval: b64.EncodeToString(ap2.Marshal()), Passkey: a.Get(ap.Challenge())}
		_, err := e.svc.Authorize(ctx, o, header(p2))
		wantCode(t, err, api.CodeAuthBadProof, "passkey assertion over another approval")
	})
	t.Run("unknown account", func(t *testing.T) {
		o := op(scope, "mallory", 10)
		ap := approval(scope, "mallory", o, now())
		k := key(t, record.P256)
		p := Proof{Approval: b64.EncodeToString(ap.Marshal()), Key: k.Public().String(), Sig: sign(t, k, ap)}
		_, err := e.svc.Authorize(ctx, o, header(p))
		wantCode(t, err, api.CodeAuthUnknown, "unknown account")
	})
	t.Run("expired session", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 11)
		e.clock.add(61 * time.Second) // the session was made for 60 s
		defer e.clock.add(-61 * time.Second)
		_, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, now())))
		wantCode(t, err, api.CodeAuthExpired, "expired session")
	})
	t.Run("revoked credential", func(t *testing.T) {
		o := op(scope, e.acct("alice"), 12)
		h := header(s.proof(t, o, now()))
		rb := &record.CredentialRevokeBody{Scope: scope, Account: e.acct("alice"), CredentialID: a.ID}
		r, err := record.Sign(record.CredentialRevoke, rb.Marshal(), dev)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.SubmitRecord(ctx, r); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.Authorize(ctx, o, h)
		wantCode(t, err, api.CodeAuthRevoked, "session of a revoked credential")
		ap := approval(scope, e.acct("alice"), o, now())
		_, err = e.svc.Authorize(ctx, o, header(Proof{Approval: b64.EncodeToString(ap.Marshal()), Passkey: a.Get(ap.Challenge())}))
		wantCode(t, err, api.CodeAuthRevoked, "revoked passkey")
		// And no new session can be made with it.
		sk := key(t, record.P256)
		// (Initiating is answered like any account's, with a decoy
		// credential, so that it does not tell: decoy.go.)
		ia, err := e.svc.InitiateAuthentication(ctx, api.InitiateAuthenticationParams{Scope: scope, Account: e.acct("alice"), SessionKey: sk.Public().String()})
		if err != nil || slices.Contains(ia.AllowCredentials, b64.EncodeToString(a.ID)) {
			t.Fatalf("initiate with a revoked passkey: %v %v", err, ia)
		}
		ch, _ := b64.DecodeString(ia.Challenge)
		// The session record a revoked passkey proves is stored (records
		// apply in any order; liveness is checked on use), and approves
		// nothing.
		as, err := e.svc.CompleteAuthentication(ctx, api.CompleteAuthenticationParams{ChallengeID: ia.ChallengeID, Credential: a.Get(ch)})
		if err == nil {
			s2 := &session{scope: scope, account: e.acct("alice"), key: sk, rec: as.Record}
			o2 := op(scope, e.acct("alice"), 13)
			_, err = e.svc.Authorize(ctx, o2, header(s2.proof(t, o2, now())))
		}
		wantCode(t, err, api.CodeAuthRevoked, "login with a revoked passkey")
	})
}

func TestRevokedSession(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	s := e.login(e.register(scope, "alice"), scope, e.acct("alice"))
	// The session key revokes itself (log out).
	rb := &record.SessionRevokeBody{Scope: scope, Account: e.acct("alice"), Session: s.key.Public().ID()}
	r, err := record.Sign(record.SessionRevoke, rb.Marshal(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SubmitRecord(ctx, r); err != nil {
		t.Fatal(err)
	}
	o := op(scope, e.acct("alice"), 1)
	_, err = e.svc.Authorize(ctx, o, header(s.proof(t, o, e.clock.now())))
	wantCode(t, err, api.CodeAuthRevoked, "revoked session")
}

func TestHybrid(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeHybrid, record.P256)
	s := e.login(e.register(scope, "alice"), scope, e.acct("alice"))
	now := e.clock.now
	o := op(scope, e.acct("alice"), 1)
	_, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, now())))
	wantCode(t, err, api.CodeAuthIncomplete, "hybrid with the user's approval only")
	_, err = e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, e.acct("alice"), o, now())))
	wantCode(t, err, api.CodeAuthIncomplete, "hybrid with the developer's approval only")
	if _, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, now()), devProof(t, dev, scope, e.acct("alice"), o, now()))); err != nil {
		t.Fatalf("hybrid with both: %v", err)
	}
	// A developer approval for another operation does not complete this one.
	o2 := op(scope, e.acct("alice"), 2)
	_, err = e.svc.Authorize(ctx, o2, header(s.proof(t, o2, now()), devProof(t, dev, scope, e.acct("alice"), o, now())))
	wantCode(t, err, api.CodeAuthIncomplete, "hybrid with the developer's approval of another operation")
}

func TestDeveloperMode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeDeveloper, record.Ed25519)
	userKey := key(t, record.P256)
	cred := record.KeyCredential(userKey.Public())
	b := &record.AccountRegisterBody{Scope: scope, Account: "user-1", Time: e.clock.now().Unix(), Credential: &cred}
	rand.Read(b.Nonce[:])
	r, _ := record.Sign(record.AccountRegister, b.Marshal(), dev)
	p := api.SignedRecord{Record: b64.EncodeToString(r.Marshal())}
	if _, err := e.svc.DelegatedRegistration(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.DelegatedRegistration(ctx, p)
	wantCode(t, err, api.CodeAuthReplay, "replayed delegated registration")

	// The same nonce for another account is another registration, which
	// only the developer signs: the record id (its body) is what stops a
	// replay. (A scope-wide first-come index of nonces made two
	// registrations with one nonce apply in arrival order.)
	b2 := *b
	b2.Account, b2.Credential = "user-2", nil
	r2, _ := record.Sign(record.AccountRegister, b2.Marshal(), dev)
	if _, err = e.svc.DelegatedRegistration(ctx, api.SignedRecord{Record: b64.EncodeToString(r2.Marshal())}); err != nil {
		t.Fatalf("another account with the same nonce: %v", err)
	}

	// A stale timestamp.
	b3 := &record.AccountRegisterBody{Scope: scope, Account: "user-3", Time: e.clock.now().Add(-time.Hour).Unix()}
	r3, _ := record.Sign(record.AccountRegister, b3.Marshal(), dev)
	_, err = e.svc.DelegatedRegistration(ctx, api.SignedRecord{Record: b64.EncodeToString(r3.Marshal())})
	wantCode(t, err, api.CodeAuthExpired, "stale delegated registration")

	// Signed by a key that is not the scope's developer key.
	b4 := &record.AccountRegisterBody{Scope: scope, Account: "user-4", Time: e.clock.now().Unix()}
	r4, _ := record.Sign(record.AccountRegister, b4.Marshal(), key(t, record.Ed25519))
	_, err = e.svc.DelegatedRegistration(ctx, api.SignedRecord{Record: b64.EncodeToString(r4.Marshal())})
	wantCode(t, err, api.CodeAuthBadProof, "registration signed by a stranger")

	now := e.clock.now
	o := op(scope, "user-1", 1)
	if _, err := e.svc.Authorize(ctx, o, header(devProof(t, dev, scope, "user-1", o, now()))); err != nil {
		t.Fatalf("DOA approval: %v", err)
	}
	// DOA signature over a different payload.
	good := devProof(t, dev, scope, "user-1", o, now())
	other := approval(scope, "user-1", op(scope, "user-1", 2), now())
	forged := good
	forged.Approval = b64.EncodeToString(approval(scope, "user-1", o, now()).Marshal())
	_, err = e.svc.Authorize(ctx, o, header(forged))
	wantCode(t, err, api.CodeAuthBadProof, "DOA signature over another approval")
	forged.Sig = sign(t, dev, other)
	_, err = e.svc.Authorize(ctx, o, header(forged))
	wantCode(t, err, api.CodeAuthBadProof, "DOA signature over another operation's approval")
	// The user's key alone is not enough in developer mode.
	ua := approval(scope, "user-1", o, now())
	_, err = e.svc.Authorize(ctx, o, header(Proof{Approval: b64.EncodeToString(ua.Marshal()), Key: userKey.Public().String(), Sig: sign(t, userKey, ua)}))
	wantCode(t, err, api.CodeAuthIncomplete, "user key in developer mode")
}

func TestChallengesSingleUseAndExpiring(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	a := authtest.New(testRPID, testOrigin)
	init, err := e.svc.InitiateRegistration(ctx, api.InitiateRegistrationParams{Scope: scope, Account: e.acct("alice"), RegistrationKey: e.regKeys["alice"].Public().String()})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := b64.DecodeString(init.Challenge)
	// A wrong-origin attestation burns the challenge.
	bad := authtest.New(testRPID, "http://evil.example")
	_, err = e.svc.CompleteRegistration(ctx, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: bad.Create(ch)})
	wantCode(t, err, api.CodeAuthBadProof, "wrong origin")
	_, err = e.svc.CompleteRegistration(ctx, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: a.Create(ch)})
	wantCode(t, err, api.CodeAuthUnknown, "reused challenge")
	if ok, _ := e.svc.State().HasAccount(ctx, scope, e.acct("alice")); ok {
		t.Fatal("a failed registration created the account")
	}
	init, _ = e.svc.InitiateRegistration(ctx, api.InitiateRegistrationParams{Scope: scope, Account: e.acct("alice"), RegistrationKey: e.regKeys["alice"].Public().String()})
	e.clock.add(ChallengeTTL + time.Second)
	ch, _ = b64.DecodeString(init.Challenge)
	_, err = e.svc.CompleteRegistration(ctx, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: a.Create(ch)})
	wantCode(t, err, api.CodeAuthExpired, "expired challenge")
	// An attestation for another challenge (another payload).
	init, _ = e.svc.InitiateRegistration(ctx, api.InitiateRegistrationParams{Scope: scope, Account: e.acct("alice"), RegistrationKey: e.regKeys["alice"].Public().String()})
	_, err = e.svc.CompleteRegistration(ctx, api.CompleteRegistrationParams{ChallengeID: init.ChallengeID, Credential: a.Create(ch)})
	wantCode(t, err, api.CodeAuthBadProof, "attestation over another challenge")
}

// snapshot returns every auth namespace's content.
func snapshot(t *testing.T, st store.Store) string { return snapshotOps(t, st) }

func snapshotOps(t *testing.T, st store.Ops) string {
	var buf bytes.Buffer
	for _, ns := range []string{nsApplied, nsScope, nsScopeBase, nsScopeUpdate, nsAccount, nsCred, nsCredIndex, nsCredOrigin, nsCredRevoked, nsSession, nsSessionRevoked, nsRegNonce, nsRegistration} {
		es, err := st.List(context.Background(), ns, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			buf.WriteString(ns + " " + e.Key + " " + b64.EncodeToString(e.Value) + "\n")
		}
	}
	return buf.String()
}

func TestApplyIdempotentAndStrict(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	b := &record.AccountRegisterBody{Scope: scope, Account: "bob", Time: 1}
	r, _ := record.Sign(record.AccountRegister, b.Marshal(), dev)
	apply := func(rec []byte) error {
		return e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, rec) })
	}
	if err := apply(r.Marshal()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, e.st)
	if err := apply(r.Marshal()); !errors.Is(err, replica.ErrDuplicate) {
		t.Fatalf("second apply: %v", err)
	}
	// Re-signed (ECDSA is randomised): the same record, dropped as a
	// duplicate (the replica neither stores nor forwards it)...
	r2, _ := record.Sign(record.AccountRegister, b.Marshal(), dev)
	if err := apply(r2.Marshal()); !errors.Is(err, replica.ErrDuplicate) {
		t.Fatalf("re-signed apply: %v", err)
	}
	// ...and so is a copy whose signature is garbage: it is never checked,
	// never stored.
	r3 := *r
	r3.Auth.Sig = make([]byte, 64)
	if err := apply(r3.Marshal()); !errors.Is(err, replica.ErrDuplicate) {
		t.Fatalf("garbage-signed copy: %v", err)
	}
	if snapshot(t, e.st) != before {
		t.Fatal("re-applying changed the state")
	}
	// Invalid records write nothing and wrap ErrInvalid, even when Apply
	// runs outside a transaction.
	stranger := key(t, record.P256)
	userKey := key(t, record.P256)
	cred := record.KeyCredential(userKey.Public())
	forgedAcct, _ := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "mallory", Time: 1, Credential: &cred}).Marshal(), stranger)
	unsigned := &record.Record{Kind: record.AccountRegister, Body: (&record.AccountRegisterBody{Scope: scope, Account: "eve", Time: 1}).Marshal(), Auth: record.Auth{Kind: record.AuthSignature, Signer: dev.Public(), Sig: make([]byte, 64)}}
	forgedCred, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "bob", Credential: cred}).Marshal(), userKey)
	otherScope, _ := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: record.ScopeConfig{RPID: "x", Origins: []string{"https://x"}, Mode: record.ModeUser, SessionTTL: 1, DevKeys: []record.PublicKey{stranger.Public()}}}).Marshal(), stranger)
	for name, rec := range map[string][]byte{
		"garbage":                    []byte("not a record"),
		"account signed by stranger": forgedAcct.Marshal(),
		"unsigned account":           unsigned.Marshal(),
		"credential self-signed":     forgedCred.Marshal(),
		"scope taken over":           otherScope.Marshal(),
	} {
		err := Applier{}.Apply(ctx, e.st, rec)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not wrap ErrInvalid", name, err)
		}
		if snapshot(t, e.st) != before {
			t.Fatalf("%s: a refused record wrote state", name)
		}
	}
}

func TestRevocationWinsOverOrder(t *testing.T) {
	// Revoke arrives before the add (catch-up from peers in another
	// order): the add is applied (as it would be in the other order, so
	// that the state does not depend on the order) but the credential
	// never becomes usable. (Developer mode: the developer adds
	// credentials only there.)
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeDeveloper, record.P256)
	reg, _ := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "bob", Time: 1}).Marshal(), dev)
	if err := e.svc.SubmitRecord(ctx, reg); err != nil {
		t.Fatal(err)
	}
	uk := key(t, record.Ed25519)
	cred := record.KeyCredential(uk.Public())
	add, _ := record.Sign(record.CredentialAdd, (&record.CredentialAddBody{Scope: scope, Account: "bob", Credential: cred}).Marshal(), dev)
	rev, _ := record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: "bob", CredentialID: cred.ID}).Marshal(), dev)
	if err := e.svc.SubmitRecord(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SubmitRecord(ctx, add); err != nil {
		t.Fatalf("add after revoke: %v", err)
	}
	if live, err := e.svc.State().Live(ctx, scope, "bob", cred.ID); err != nil || live {
		t.Fatalf("revoked credential live: %v %v", live, err)
	}
	o := op(scope, "bob", 1)
	ap := approval(scope, "bob", o, e.clock.now())
	_, err := e.svc.Authorize(ctx, o, header(Proof{Approval: b64.EncodeToString(ap.Marshal()), Key: uk.Public().String(), Sig: sign(t, uk, ap)}, devProof(t, dev, scope, "bob", o, e.clock.now())))
	wantCode(t, err, api.CodeAuthRevoked, "revoked key credential")
}

func TestScopeUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256)
	dev2 := key(t, record.Ed25519)
	cfg := record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeHybrid, SessionTTL: 60, DevKeys: []record.PublicKey{dev2.Public()}}
	up, _ := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg}).Marshal(), dev)
	if _, err := e.svc.UpdateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(up.Marshal())}); err != nil {
		t.Fatal(err)
	}
	sc, err := e.svc.GetScope(ctx, scope)
	if err != nil || sc.Mode != "hybrid" || sc.Seq != 1 || sc.DevKeys[0] != dev2.Public().String() {
		t.Fatalf("after update: %+v %v", sc, err)
	}
	// The old key no longer updates it: its update at a higher seq is
	// authorized by the creation config (so every node stores it, in any
	// order), but the chain from seq 1 does not take it. A stale
	// sequence is refused.
	cfg2 := cfg
	cfg2.DevKeys = []record.PublicKey{dev.Public()}
	up2, _ := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 2, Config: cfg2}).Marshal(), dev)
	sc, err = e.svc.UpdateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(up2.Marshal())})
	if err != nil || sc.Seq != 1 || sc.DevKeys[0] != dev2.Public().String() {
		t.Fatalf("a removed key updated the scope: %+v %v", sc, err)
	}
	if got, err := e.svc.GetScope(ctx, scope); err != nil || got.Seq != 1 {
		t.Fatalf("after a removed key's update: %+v %v", got, err)
	}
	cfg.SessionTTL = 61
	up3, _ := record.Sign(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: cfg}).Marshal(), dev2)
	_, err = e.svc.UpdateScope(ctx, api.SignedRecord{Record: b64.EncodeToString(up3.Marshal())})
	wantCode(t, err, api.CodeAuthConflict, "stale update")
}

func TestKeySessionAndLifetime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, dev := e.scope(record.ModeUser, record.P256) // session limit 3600 s
	uk := key(t, record.Ed25519)
	cred := record.KeyCredential(uk.Public())
	reg, _ := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "dana", Time: 1, Credential: &cred}).Marshal(), dev)
	if err := e.svc.SubmitRecord(ctx, reg); err != nil {
		t.Fatal(err)
	}
	now := e.clock.now()
	sk := key(t, record.P256)
	long := &record.SessionCreateBody{Scope: scope, Account: "dana", Key: sk.Public(), Issued: now.Unix(), Expiry: now.Unix() + 3601}
	r, _ := record.Sign(record.SessionCreate, long.Marshal(), uk)
	if err := e.svc.SubmitRecord(ctx, r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("over-long session stored: %v", err)
	}
	// Presented directly as a session proof, it is refused too.
	o := op(scope, "dana", 1)
	s := &session{scope: scope, account: "dana", key: sk, rec: b64.EncodeToString(r.Marshal())}
	_, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, now)))
	wantCode(t, err, api.CodeAuthBadProof, "over-long session")

	ok := &record.SessionCreateBody{Scope: scope, Account: "dana", Key: sk.Public(), Issued: now.Unix(), Expiry: now.Unix() + 600}
	r, _ = record.Sign(record.SessionCreate, ok.Marshal(), uk)
	s.rec = b64.EncodeToString(r.Marshal())
	if _, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, now))); err != nil {
		t.Fatalf("key-authorised session: %v", err)
	}
	// A session signed by the developer key is not the user's approval.
	r, _ = record.Sign(record.SessionCreate, ok.Marshal(), dev)
	s.rec = b64.EncodeToString(r.Marshal())
	o = op(scope, "dana", 2)
	_, err = e.svc.Authorize(ctx, o, header(s.proof(t, o, now)))
	wantCode(t, err, api.CodeAuthBadProof, "developer-signed session")
}

// FuzzProofs: the X-Keymesh-Auth header comes from clients; parsing and
// Authorize never panic, and every refusal is an *api.Error.
func FuzzProofs(f *testing.F) {
	f.Add("")
	f.Add(header(Proof{Approval: "AAAA", Sig: "AA"}))
	f.Add(header(Proof{Approval: b64.EncodeToString((&record.Approval{Scope: "0123456789abcdef0123456789abcdef", Account: "a", Method: "m", Expiry: 1}).Marshal()), Developer: "ed25519:" + b64.EncodeToString(make([]byte, 32)), Sig: b64.EncodeToString(make([]byte, 64))}))
	f.Add(b64.EncodeToString([]byte(`{"approvals":[{"approval":"","passkey":{}}]}`)))
	st, err := sqlite.Open(filepath.Join(f.TempDir(), "auth.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(context.Background()); err != nil {
		f.Fatal(err)
	}
	svc, _ := New(Options{Store: st})
	f.Fuzz(func(t *testing.T, h string) {
		if p, err := ParseProofs(h); err == nil {
			for _, pr := range p.Approvals {
				parseProof(&pr)
			}
		}
		_, err := svc.Authorize(context.Background(), Operation{Scope: "0123456789abcdef0123456789abcdef", Account: "a", Method: "m"}, h)
		if code(err) == 0 {
			t.Fatalf("not a client error: %v", err)
		}
	})
}

func TestSweepNonces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	s := e.login(e.register(scope, "alice"), scope, e.acct("alice"))
	o := op(scope, e.acct("alice"), 1)
	if _, err := e.svc.Authorize(ctx, o, header(s.proof(t, o, e.clock.now()))); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		es, err := e.st.List(ctx, nsNonce, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	if err := e.svc.SweepNonces(ctx); err != nil || count() != 1 {
		t.Fatalf("an unexpired nonce was swept: %d %v", count(), err)
	}
	e.clock.add(3 * time.Minute) // the approval expired
	if err := e.svc.SweepNonces(ctx); err != nil || count() != 0 {
		t.Fatalf("the expired nonce stayed: %d %v", count(), err)
	}
}

// FuzzApply: records come from peers. Apply never panics, and a record it
// refuses wraps ErrInvalid and writes nothing.
func FuzzApply(f *testing.F) {
	st, err := sqlite.Open(filepath.Join(f.TempDir(), "auth.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	svc, _ := New(Options{Store: st})
	e := &env{t: f, st: st, svc: svc, clock: &clock{t: time.Now()}}
	e.svc.now = e.clock.now
	scope, dev := e.scope(record.ModeUser, record.P256)
	a := e.register(scope, "alice")
	uk := key(f, record.Ed25519)
	cred := record.KeyCredential(uk.Public())
	for _, r := range []*record.Record{
		must(record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: "bob", Time: 1, Credential: &cred}).Marshal(), dev)),
		must(record.Sign(record.CredentialRevoke, (&record.CredentialRevokeBody{Scope: scope, Account: e.acct("alice"), CredentialID: a.ID}).Marshal(), dev)),
		must(record.Sign(record.SessionCreate, (&record.SessionCreateBody{Scope: scope, Account: "bob", Key: uk.Public(), Issued: 1, Expiry: 2}).Marshal(), uk)),
		{Kind: record.AccountRegister, Body: (&record.AccountRegisterBody{Scope: scope, Account: "carol", Time: 1}).Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreate, WebAuthn: authtest.New(testRPID, testOrigin).Create(make([]byte, 32))}},
		must(record.SignQuorum(record.ScopeUpdate, (&record.ScopeUpdateBody{Scope: scope, Seq: 1, Config: record.ScopeConfig{RPID: testRPID, Origins: []string{testOrigin}, Mode: record.ModeHybrid, SessionTTL: 60, DevKeys: []record.PublicKey{uk.Public()}, DevQuorum: 1}}).Marshal(), dev, uk)),
		keyedSeed(f, scope, "dave"),
	} {
		f.Add(r.Marshal())
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		before := snapshot(t, st)
		var applyErr error
		err := st.Update(ctx, func(tx store.Ops) error {
			applyErr = Applier{}.Apply(ctx, tx, rec)
			if applyErr != nil && snapshotOps(t, tx) != before {
				t.Fatal("a refused record wrote state")
			}
			return errRollback // keep the seeded state for every input
		})
		if err != errRollback {
			t.Fatal(err)
		}
		if applyErr != nil && !errors.Is(applyErr, ErrInvalid) {
			t.Fatalf("refusal does not wrap ErrInvalid: %v", applyErr)
		}
	})
}

var errRollback = errors.New("rollback")

func must(r *record.Record, err error) *record.Record {
	if err != nil {
		panic(err)
	}
	return r
}

// keyedSeed is a keyed passkey registration record (its attestation is
// over a made-up challenge, so Apply refuses it: a seed to mutate).
func keyedSeed(t testing.TB, scope, account string) *record.Record {
	a := authtest.New(testRPID, testOrigin)
	rk := key(t, record.P256).Public()
	b := &record.AccountRegisterBody{Scope: scope, Account: account, Time: 1, RegistrationKey: &rk, Credential: &record.Credential{ID: a.ID, Kind: record.CredPasskey, PublicKey: a.COSEKey()}}
	return &record.Record{Kind: record.AccountRegister, Body: b.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: a.Create(record.Challenge(record.AccountRegister, b.Payload())), Sig: make([]byte, 64)}}
}
