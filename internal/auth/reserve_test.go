package auth

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/record"
)

// TestReserveQuorum checks, for every cluster shape 2 ≤ t ≤ n ≤ 16, that a
// quorum of ReserveQuorum(n, t) nodes meets every signer set of t nodes
// (so a replay through another gateway reaches a node that saw the
// approval), and that one node fewer does not (some signer set avoids it).
// Node sets are bit masks; the question is the same for every quorum of a
// given size (relabel the nodes), so the quorum is nodes 0..q−1 and every
// t-subset of the n nodes is tried.
func TestReserveQuorum(t *testing.T) {
	for n := 2; n <= 16; n++ {
		for th := 2; th <= n; th++ {
			q := ReserveQuorum(n, th)
			if q < 1 || q > n {
				t.Fatalf("n=%d t=%d: quorum %d outside 1..n", n, th, q)
			}
			meets := func(q int) bool {
				quorum := uint32(1)<<q - 1
				for s := uint32(0); s < 1<<n; s++ {
					if bits.OnesCount32(s) == th && s&quorum == 0 {
						return false
					}
				}
				return true
			}
			if !meets(q) {
				t.Errorf("n=%d t=%d: a signer set avoids a quorum of %d", n, th, q)
			}
			if meets(q - 1) {
				t.Errorf("n=%d t=%d: a quorum of %d would do; %d is not the smallest", n, th, q-1, q)
			}
			// The signers are part of the quorum: no extra node when n ≤ 2t−1.
			if extra := max(0, q-th); (extra == 0) != (n <= 2*th-1) {
				t.Errorf("n=%d t=%d: %d extra nodes", n, th, extra)
			}
		}
	}
}

func reserveOK(t *testing.T, h func(context.Context, uint16, []byte) ([]byte, error), o Operation, proofs string) {
	t.Helper()
	out, err := h(context.Background(), 2, EncodeReservation(o, proofs))
	if err != nil || len(out) != 0 {
		t.Fatalf("reservation: %q, %v", out, err)
	}
}

func reserveRefused(t *testing.T, h func(context.Context, uint16, []byte) ([]byte, error), o Operation, proofs string, code int, what string) {
	t.Helper()
	_, err := h(context.Background(), 2, EncodeReservation(o, proofs))
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("[%d] ", code)) {
		t.Fatalf("%s: %v, want a refusal [%d]", what, err, code)
	}
}

// TestReserveHandler: a reservation is Authorize at the reserving node. A
// valid approval is reserved, again for the same request (the gateway's
// retry), and then lets this node co-sign that request but no other; an
// approval that does not verify, or is for another operation, is refused
// and records nothing (the genuine approval with the same nonce is still
// accepted afterwards); a malformed body is refused.
func TestReserveHandler(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	scope, _ := e.scope(record.ModeUser, record.P256)
	s := e.login(e.register(scope, "alice"), scope, e.acct("alice"))
	h := e.svc.ReserveHandler(nil)
	count := func() int {
		es, err := e.st.List(ctx, nsNonce, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}

	o := op(scope, e.acct("alice"), 1)
	p := s.proof(t, o, e.clock.now())
	genuine := header(p)
	forged := p
	forged.Sig = sign(t, s.key, &record.Approval{Scope: scope, Account: e.acct("alice"), Method: o.Method, Expiry: 1}) // a valid signature of something else
	other := o
	other.Hash[5] ^= 1
	wrongAccount := o
	wrongAccount.Account = "bob"

	reserveRefused(t, h, o, header(forged), api.CodeAuthBadProof, "signature over another approval")
	reserveRefused(t, h, other, genuine, api.CodeAuthWrongOperation, "another operation")
	reserveRefused(t, h, wrongAccount, genuine, api.CodeAuthWrongScope, "another account")
	reserveRefused(t, h, o, "", api.CodeAuthMissing, "no proofs")
	for _, b := range [][]byte{nil, {0}, {2}, append(EncodeReservation(o, genuine), 0), EncodeReservation(op("", e.acct("alice"), 1), genuine)} {
		if _, err := h(ctx, 2, b); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("malformed reservation %x: %v", b, err)
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("refused reservations recorded %d nonces", n)
	}

	reserveOK(t, h, o, genuine)
	reserveOK(t, h, o, genuine) // the gateway's second attempt
	if _, err := e.svc.Authorize(ctx, o, genuine); err != nil {
		t.Fatalf("co-signing the reserved request: %v", err)
	}
	o2 := o
	o2.Request[9] = 7
	reserveRefused(t, h, o2, genuine, api.CodeAuthReplay, "the approval for another request")
	_, err := e.svc.Authorize(ctx, o2, genuine)
	wantCode(t, err, api.CodeAuthReplay, "co-signing another request")
	if n := count(); n != 1 {
		t.Fatalf("%d nonces recorded, want 1", n)
	}
}

// FuzzReservation: reservations come from peers. DecodeReservation never
// panics, and what it accepts encodes back to the same bytes.
func FuzzReservation(f *testing.F) {
	o := op("scope", "alice", 3)
	f.Add(EncodeReservation(o, "proofs"))
	f.Add([]byte{1})
	f.Add(EncodeReservation(Operation{Scope: "s", Account: "a", Method: "m"}, ""))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, proofs, err := DecodeReservation(b)
		if err != nil {
			return
		}
		if got := EncodeReservation(o, proofs); !bytes.Equal(got, b) {
			t.Fatalf("decode/encode changed %x into %x", b, got)
		}
	})
}

// BenchmarkReserve is what one reservation costs the reserving node: decode
// and Authorize of a fresh session-key approval (the passkey-authorised
// session record verified once, then cached, as on the hot path), nonce
// written to SQLite. Run with
//
//	go test -run '^$' -bench 'Reserve|Authorize/user' ./internal/auth
func BenchmarkReserve(b *testing.B) {
	e := newEnv(b)
	scope, _ := e.scope(record.ModeUser, record.P256)
	s := e.login(e.register(scope, "alice"), scope, e.acct("alice"))
	h := e.svc.ReserveHandler(nil)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		o := op(scope, e.acct("alice"), byte(i))
		o.Request[1], o.Request[2], o.Request[3] = byte(i>>8), byte(i>>16), byte(i>>24)
		body := EncodeReservation(o, header(s.proof(b, o, e.clock.now())))
		b.StartTimer()
		if _, err := h(ctx, 2, body); err != nil {
			b.Fatal(err)
		}
	}
}
