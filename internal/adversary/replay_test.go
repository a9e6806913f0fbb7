//go:build keymesh_adversary

package adversary

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	ethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/keygen"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/node"
	"github.com/keymesh/keymesh/internal/transport"
	"github.com/keymesh/keymesh/internal/wallet"
)

// defences switches the two defences against a repeated session id:
// every party's fresh contribution to the session id (round.Fresh,
// process-wide: every node of the cluster runs in this process) and the
// durable session record of node victim. It restores both when the test
// ends.
func defences(t *testing.T, c *Cluster, fresh, record bool, victims ...uint16) {
	t.Helper()
	was := round.TestingOnlySetFreshness(fresh)
	t.Cleanup(func() { round.TestingOnlySetFreshness(was) })
	for _, v := range victims {
		n := c.Node(v)
		wasRec := n.TestingOnlySetSessionRecord(record)
		t.Cleanup(func() { n.TestingOnlySetSessionRecord(wasRec) })
	}
}

func random16() (b [16]byte) { rand.Read(b[:]); return }
func random32() (b [32]byte) { rand.Read(b[:]); return }

// logLine reports whether one line of log holds every part.
func logLine(log string, parts ...string) bool {
	for line := range strings.Lines(log) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// refusedRepeat reports whether err is a peer's refusal of a repeated
// session id (node.ErrSessionRepeated, whose text crosses the transport).
func refusedRepeat(err error) bool {
	return err != nil && strings.Contains(err.Error(), node.ErrSessionRepeated.Error())
}

// TestReplayedSignInvitation is finding 1 of issue 12 on a real 3-node
// cluster: a malicious gateway (node 1) receives one ordinary approved
// personal_sign and sends the honest co-signer (node 2) the same signing
// invitation twice (same nonce, request id and proofs), playing Bob with
// OT-extension choice bits 0…0 in the first session and 1…1 in the second
// (sign.TestingOnlyEvilSession), then combines the victim's two replies
// with its own share.
//
//   - Both defences off: the attacker recovers the wallet's private key (its
//     address is the wallet's, and a message nobody approved, signed with
//     it, verifies with go-ethereum): the test sees the attack.
//   - Only the session record off: the victim runs the second session, but
//     under another sid* (its fresh contribution), and the same computation
//     yields a wrong key.
//   - The record on (with freshness off, and with both on): the victim
//     refuses the second invitation before its session sends anything, logs
//     a security event, and the attacker has nothing to combine.
func TestReplayedSignInvitation(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	u := c.NewUser("alice")
	addr := c.CreateWallet(2, u)
	ev := c.Evil(1)
	const victim = 2
	own, err := ev.Share(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	signers := []round.PartyID{1, victim}

	for _, tc := range []struct {
		name          string
		fresh, record bool
	}{
		{"defences off", false, false},
		{"record only", false, true},
		{"freshness only", true, false},
		{"both on", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defences(t, c, tc.fresh, tc.record, victim)
			// The client's ordinary request, approved by the user, reaches
			// the malicious gateway.
			msg := []byte("alice approves this one message (" + tc.name + ")")
			req := u.ApproveSign(api.MethodPersonalSign, []any{hexutil.Encode(msg), addr.Hex()})
			nonce, request := random32(), random16()
			body := ev.SignInvitation(req, request, nonce, 1, victim)

			var caps [2]*sign.TestingOnlyCapture
			var runs [2]*Run
			for choice := range 2 {
				s, capt, err := sign.TestingOnlyEvilSession(own, signers, req.Digest[:], nonce[:], victim, byte(choice), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				caps[choice] = capt
				runs[choice] = ev.RunSession(ctx, s, wallet.KindSign, body, victim)
			}
			// The first invitation is an ordinary, approved signing: the
			// victim takes part and the attacker's session signs.
			if err := runs[0].PeerErr(victim); err != nil {
				t.Fatalf("first invitation: node %d answered %v", victim, err)
			}
			if sig, ok := runs[0].Result.(*dkls23.Signature); !ok || sig.Verify(own.PublicKey(), req.Digest[:]) != nil {
				t.Fatalf("first invitation: no valid signature (%v)", runs[0].Err)
			}
			second := runs[1].PeerErr(victim)

			if tc.record {
				// Refused before the victim's session sent anything.
				if !refusedRepeat(second) {
					t.Fatalf("second invitation: node %d answered %v, want a refusal of the repeated session id", victim, second)
				}
				if !logLine(c.Log(victim), `"event":"session_repeat"`, `"parties":[1,2]`) ||
					!logLine(c.Log(victim), `"msg":"co-signing session failed"`, `"gateway":1`, "a repeat is refused") {
					t.Fatalf("node %d did not log the repeat as a security event naming the gateway", victim)
				}
				// The attacker's session never got the victim's
				// contribution (engine round 1): the victim sent nothing.
				if r := runs[1].Session.Round(); r != 2 {
					t.Fatalf("the attacker's second session reached engine round %d: the victim sent messages", r)
				}
				if caps[1].Complete() {
					t.Fatal("the attacker captured a reply to the refused invitation")
				}
				if _, err := sign.TestingOnlyExtractShare(caps[0], caps[1]); err == nil {
					t.Fatal("extraction succeeded with one reply")
				}
				return
			}
			if second != nil {
				t.Fatalf("second invitation with the record off: node %d answered %v", victim, second)
			}
			f0, _ := caps[0].FreshID()
			f1, _ := caps[1].FreshID()
			if (f0 == f1) != !tc.fresh {
				t.Fatalf("fresh contributions %v, yet the two sessions' sid* are equal: %v", tc.fresh, f0 == f1)
			}
			key, err := sign.TestingOnlyRecoverKey(caps[0], caps[1])
			if err != nil {
				t.Fatal(err)
			}
			defer key.Zero()
			kb := key.Bytes()
			priv, err := ethcrypto.ToECDSA(kb[:])
			clear(kb[:])
			if err != nil {
				if tc.fresh {
					return // not even a valid key
				}
				t.Fatal("the recovered key is not a valid private key")
			}
			got := ethcrypto.PubkeyToAddress(priv.PublicKey)
			if tc.fresh {
				if got == addr || sign.TestingOnlyKeyMatches(own, key) {
					t.Fatal("the attack recovered the wallet's key despite the fresh contributions")
				}
				return
			}
			if got != addr || !sign.TestingOnlyKeyMatches(own, key) {
				t.Fatal("with the defences off the attack should recover the wallet's key: the test does not see the attack")
			}
			// The attacker now signs what nobody approved.
			theft := []byte("transfer everything to mallory")
			sig, err := ethcrypto.Sign(accounts.TextHash(theft), priv)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := ethcrypto.SigToPub(accounts.TextHash(theft), sig)
			if err != nil || ethcrypto.PubkeyToAddress(*pub) != addr {
				t.Fatal("the forged signature does not recover to the wallet's address")
			}
		})
	}
}

// TestReplayedKeygenInvitation: a malicious gateway (node 1) makes a key
// generation fail after the honest nodes started it (it corrupts its own
// messages, so that they abort blaming it), then sends them the same
// invitation again (same nonce, request id and approval) and runs honestly.
//
//   - Both defences off: the honest nodes run a second key generation under
//     the very same session id (same sid*) and store its key: the test sees
//     the repeat.
//   - Only the record off: they run it under another sid*.
//   - The record on: both refuse the replay before their session sends
//     anything, and log a security event.
//
// Messages of the first run that arrive after a party's session ended wait
// in its transport's buffer for unknown sessions (PendingTTL), and the
// replay, under the same base id, would take them: the cluster keeps them
// three seconds (long enough for a loaded machine to start a session after
// its first messages came) and the replay comes after that, as a later
// replay would.
func TestReplayedKeygenInvitation(t *testing.T) {
	const ttl = 3 * time.Second
	c := NewCluster(t, Options{Transport: transport.Options{PendingTTL: ttl}})
	ctx := context.Background()
	u := c.NewUser("bob")
	ev := c.Evil(1)
	parties := []round.PartyID{1, 2, 3}
	honest := []uint16{2, 3}

	for _, tc := range []struct {
		name          string
		fresh, record bool
	}{
		{"defences off", false, false},
		{"freshness only", true, false},
		{"record on", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defences(t, c, tc.fresh, tc.record, honest...)
			nonce, request := random32(), random16()
			body := ev.KeygenInvitation(u, u.ApproveCreate(), request, nonce)

			s1, err := keygen.NewSession(1, parties, 2, nonce[:], rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			// Engine round 1 is the contribution exchange; corrupt every
			// message of the protocol proper.
			corrupt := ev.Alter(FlipBit(All(InSession(s1.ID()), FromRound(3)), -1, 0))
			first := ev.RunSession(ctx, s1, wallet.KindKeygen, body, honest...)
			corrupt()
			for _, id := range honest {
				if err := first.PeerErr(id); err == nil || refusedRepeat(err) {
					t.Fatalf("first run: node %d answered %v, want a failed key generation", id, err)
				}
			}

			time.Sleep(ttl + 200*time.Millisecond) // the first run's late messages expire

			s2, err := keygen.NewSession(1, parties, 2, nonce[:], rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if s2.ID() != s1.ID() {
				t.Fatal("the replay has another base session id")
			}
			second := ev.RunSession(ctx, s2, wallet.KindKeygen, body, honest...)
			if tc.record {
				for _, id := range honest {
					if err := second.PeerErr(id); !refusedRepeat(err) {
						t.Fatalf("replay: node %d answered %v, want a refusal of the repeated session id", id, err)
					}
					if !strings.Contains(c.Log(id), `"event":"session_repeat"`) {
						t.Fatalf("node %d logged no security event for the repeat", id)
					}
				}
				if second.Err == nil {
					t.Fatal("the attacker's session completed without the honest nodes")
				}
				if r := s2.Round(); r != 2 {
					t.Fatalf("the attacker's session reached engine round %d: an honest node sent messages", r)
				}
				return
			}
			// The honest nodes ran the replay to the end and stored a key.
			if second.Err != nil {
				t.Fatalf("replay: the attacker's session: %v (nodes answered %v)", second.Err, second.Errs)
			}
			sh := second.Result.(*dkls23.Share)
			pub, err := ethcrypto.DecompressPubkey(sh.PublicKeyBytes())
			if err != nil {
				t.Fatal(err)
			}
			want := ethcrypto.PubkeyToAddress(*pub)
			for _, id := range honest {
				if err := second.PeerErr(id); err != nil {
					t.Fatalf("replay: node %d answered %v", id, err)
				}
				if got := common.BytesToAddress(second.Answers[id]); got != want {
					t.Fatalf("replay: node %d stored %s, want %s", id, got.Hex(), want.Hex())
				}
			}
			f1, _ := s1.FreshID()
			f2, _ := s2.FreshID()
			if (f1 == f2) != !tc.fresh {
				t.Fatalf("fresh contributions %v, yet the two runs' sid* are equal: %v", tc.fresh, f1 == f2)
			}
		})
	}
}
