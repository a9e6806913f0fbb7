package auth

import (
	"context"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
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
