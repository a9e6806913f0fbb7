package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth/authtest"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/transport"
)

// TestRegistrationSwapByMaliciousNode plays node 2 of a real 3-node
// cluster as a malicious peer that has received alice's passkey
// registration (finding 2 of issue 13): before the genuine record reaches
// nodes 1 and 3, it pushes its own versions of it to them: its "none"
// attestation over alice's challenge (the original attack, which made the
// genuine record an acknowledged no-op), its passkey in alice's body, and
// the first encoding with alice's payload. Both honest nodes refuse every
// forgery, then apply the genuine record, and alice's account holds
// alice's passkey on every node; a garbage-signed copy of the genuine
// record is acknowledged but stored nowhere.
func TestRegistrationSwapByMaliciousNode(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	dev, _ := client.GenerateKey("p256")
	sc, err := tc.clients[0].CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{authOrigin}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		eventually(t, "scope on every node", func() error {
			_, _, err := n.Auth().State().Scope(ctx, sc.ID)
			return err
		})
	}

	// Alice's registration, as her client makes it (registration key in
	// the payload, her passkey in the body, the attestation signed).
	alice := authtest.New("localhost", authOrigin)
	regKey, _ := record.GenerateKey(record.P256)
	rk := regKey.Public()
	b := &record.AccountRegisterBody{Scope: sc.ID, Account: record.DerivedAccountID(rk), Time: time.Now().Unix(), RegistrationKey: &rk}
	rand.Read(b.Nonce[:])
	ch := record.Challenge(record.AccountRegister, b.Payload())
	resp := alice.Create(ch)
	sig, _ := regKey.Sign(record.RegistrationMessage(ch, resp))
	b.Credential = &record.Credential{ID: alice.ID, Kind: record.CredPasskey, PublicKey: alice.COSEKey()}
	genuine := &record.Record{Kind: record.AccountRegister, Body: b.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: resp, Sig: sig}}

	// Node 2's forgeries.
	mallory := authtest.New("localhost", authOrigin)
	mresp := mallory.Create(ch)
	mkey, _ := record.GenerateKey(record.P256)
	msig, _ := mkey.Sign(record.RegistrationMessage(ch, mresp))
	swapped := *b
	swapped.Credential = &record.Credential{ID: mallory.ID, Kind: record.CredPasskey, PublicKey: mallory.COSEKey()}
	legacy := *b
	legacy.Credential = nil
	// Its own registration of alice's account id, raced ahead of hers: only
	// her registration key registers her id.
	mpub := mkey.Public()
	race := *b
	race.RegistrationKey = &mpub
	rch := record.Challenge(record.AccountRegister, race.Payload())
	rresp := mallory.Create(rch)
	rsig, _ := mkey.Sign(record.RegistrationMessage(rch, rresp))
	race.Credential = &record.Credential{ID: mallory.ID, Kind: record.CredPasskey, PublicKey: mallory.COSEKey()}
	forged := map[string]*record.Record{
		"its own registration of alice's id":     {Kind: record.AccountRegister, Body: race.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: rresp, Sig: rsig}},
		"its attestation over alice's challenge": {Kind: record.AccountRegister, Body: genuine.Body, Auth: record.Auth{Kind: record.AuthPasskeyCreate, WebAuthn: mresp}},
		"its attestation, alice's signature":     {Kind: record.AccountRegister, Body: genuine.Body, Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: mresp, Sig: sig}},
		"its passkey in alice's body":            {Kind: record.AccountRegister, Body: swapped.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreateKeyed, WebAuthn: mresp, Sig: msig}},
		"the first encoding":                     {Kind: record.AccountRegister, Body: legacy.Marshal(), Auth: record.Auth{Kind: record.AuthPasskeyCreate, WebAuthn: mresp}},
	}
	forger := tc.nodes[1]
	for name, r := range forged {
		for _, peer := range []uint16{1, 3} {
			_, err := forger.Transport().Call(ctx, peer, "replica.push", append([]byte{1}, r.Marshal()...))
			var re *transport.RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") {
				t.Fatalf("node %d took %s: %v", peer, name, err)
			}
		}
	}

	// The genuine record arrives through node 1.
	if err := tc.nodes[0].Auth().SubmitRecord(ctx, genuine); err != nil {
		t.Fatal(err)
	}
	for _, n := range tc.nodes {
		eventually(t, "alice's passkey on every node", func() error {
			creds, err := n.Auth().State().Credentials(ctx, sc.ID, b.Account)
			if err != nil {
				return err
			}
			if len(creds) != 1 || !bytes.Equal(creds[0].ID, alice.ID) || !bytes.Equal(creds[0].PublicKey, alice.COSEKey()) {
				return fmt.Errorf("node %d: alice's credentials are %d, not her passkey", n.ID(), len(creds))
			}
			return nil
		})
	}

	// A copy of the genuine record with a garbage signature: acknowledged
	// (the change is applied) but stored by no honest node.
	dup := *genuine
	dup.Auth.Sig = make([]byte, 64)
	for _, peer := range []uint16{1, 3} {
		if _, err := forger.Transport().Call(ctx, peer, "replica.push", append([]byte{1}, dup.Marshal()...)); err != nil {
			t.Fatalf("node %d: second proof: %v", peer, err)
		}
	}
	for _, i := range []int{0, 2} {
		es, err := tc.nodes[i].Replica().Log(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if bytes.Equal(e.Data, dup.Marshal()) {
				t.Fatalf("node %d stored the garbage-signed copy", i+1)
			}
		}
	}
}
