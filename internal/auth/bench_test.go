package auth

import (
	"context"
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// BenchmarkAuthorize measures Authorize on one node (SQLite store) for a
// fresh approval per operation: session key (passkey-authorised session:
// the session record's assertion is verified each time), developer key
// (DOA), and hybrid (both).
func BenchmarkAuthorize(b *testing.B) {
	for _, mode := range []record.Mode{record.ModeUser, record.ModeDeveloper, record.ModeHybrid} {
		b.Run(mode.String(), func(b *testing.B) {
			e := newEnv(b)
			scope, dev := e.scope(mode, record.P256)
			ctx := context.Background()
			var s *session
			account := "alice"
			if mode == record.ModeDeveloper {
				// Developer-mode accounts are registered by the developer
				// (passkey self-registration is refused there).
				reg, err := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: account, Time: e.clock.now().Unix()}).Marshal(), dev)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.svc.SubmitRecord(ctx, reg); err != nil {
					b.Fatal(err)
				}
			} else {
				account = e.acct("alice")
				s = e.login(e.register(scope, "alice"), scope, account)
			}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				o := op(scope, account, byte(i))
				o.Request[1], o.Request[2], o.Request[3] = byte(i>>8), byte(i>>16), byte(i>>24)
				var ps []Proof
				if mode != record.ModeDeveloper {
					ps = append(ps, s.proof(b, o, e.clock.now()))
				}
				if mode != record.ModeUser {
					ps = append(ps, devProof(b, dev, scope, account, o, e.clock.now()))
				}
				h := header(ps...)
				b.StartTimer()
				if _, err := e.svc.Authorize(ctx, o, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAuthorizeBusyScope measures Authorize in a busy scope: 256
// accounts approving with their plain-key credentials, in turn, while
// records for 256 other accounts of the scope arrive (a logout: a
// session key revoking itself, pushed through the Applier as a peer's
// record is). every=N: one record per N Authorize calls (the record's
// apply is not timed). Authorize's per-account cache (cache.go) is what
// a record for another account must not evict.
func BenchmarkAuthorizeBusyScope(b *testing.B) {
	const accounts = 256 // approving; as many others get records
	for _, every := range []int{1, 8} {
		b.Run(fmt.Sprintf("every=%d", every), func(b *testing.B) {
			e := newEnv(b)
			ctx := context.Background()
			scope, dev := e.scope(record.ModeUser, record.Ed25519)
			users := make([]*record.PrivateKey, 2*accounts)
			for i := range users {
				users[i] = key(b, record.Ed25519)
				cred := record.KeyCredential(users[i].Public())
				r, err := record.Sign(record.AccountRegister, (&record.AccountRegisterBody{Scope: scope, Account: fmt.Sprintf("u%d", i), Time: e.clock.now().Unix(), Credential: &cred}).Marshal(), dev)
				if err != nil {
					b.Fatal(err)
				}
				if err := e.svc.SubmitRecord(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			// The records that arrive, for the accounts that do not
			// approve.
			recs := make([][]byte, b.N/every+1)
			for i := range recs {
				k := key(b, record.Ed25519)
				acct := fmt.Sprintf("u%d", accounts+i%accounts)
				r, err := record.Sign(record.SessionRevoke, (&record.SessionRevokeBody{Scope: scope, Account: acct, Session: k.Public().ID()}).Marshal(), k)
				if err != nil {
					b.Fatal(err)
				}
				recs[i] = r.Marshal()
			}
			// Every account approves once before timing (the cache warm).
			for i := range accounts {
				acct := fmt.Sprintf("u%d", i)
				o := op(scope, acct, 0)
				if _, err := e.svc.Authorize(ctx, o, header(keyProof(b, users[i], scope, acct, o, e))); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if i%every == 0 {
					if err := e.st.Update(ctx, func(tx store.Ops) error { return Applier{}.Apply(ctx, tx, recs[i/every]) }); err != nil {
						b.Fatal(err)
					}
				}
				acct := fmt.Sprintf("u%d", i%accounts)
				o := op(scope, acct, byte(i))
				o.Request[1], o.Request[2], o.Request[3] = byte(i>>8), byte(i>>16), 1
				h := header(keyProof(b, users[i%accounts], scope, acct, o, e))
				b.StartTimer()
				if _, err := e.svc.Authorize(ctx, o, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
