//go:build keymesh_adversary

package adversary

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/transport"
	"github.com/keymesh/keymesh/internal/vault"
	"github.com/keymesh/keymesh/internal/vaultsvc"
)

// vaultUser is an account of a user-mode scope with its plain user key
// (kept as a record key too, to forge with) and a vault key.
type vaultUser struct {
	scope, account string
	rk             *record.PrivateKey
	vk             *vault.PrivateKey
	owner          *client.VaultOwner
}

func newVaultUsers(t *testing.T, c *Cluster, accounts ...string) []*vaultUser {
	t.Helper()
	ctx := context.Background()
	dev, err := client.GenerateKey("ed25519")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.Client(1).CreateScope(ctx, dev, client.ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost"}, Mode: "user", SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var out []*vaultUser
	for _, a := range accounts {
		rk, err := record.GenerateKey(record.P256)
		if err != nil {
			t.Fatal(err)
		}
		key, err := client.ParseKey(rk.MarshalPrivate())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client(1).RegisterDelegated(ctx, dev, sc.ID, a, key.Public()); err != nil {
			t.Fatal(err)
		}
		vk, err := vault.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		ck, err := client.ParseVaultKey(vk.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &vaultUser{scope: sc.ID, account: a, rk: rk, vk: vk,
			owner: &client.VaultOwner{Scope: sc.ID, Account: a, Signer: key, Approver: client.UserKeySigner(key, sc.ID, a), Key: ck}})
	}
	// Every node knows every account before the test starts.
	deadline := time.Now().Add(10 * time.Second)
	for id := uint16(1); int(id) <= c.N(); id++ {
		for _, u := range out {
			for {
				ok, err := c.Node(id).Auth().State().HasAccount(ctx, u.scope, u.account)
				if err == nil && ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("node %d does not know account %s: %v", id, u.account, err)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}
	}
	return out
}

// vaultRecord signs body as a record of kind with k.
func vaultRecord(t *testing.T, kind record.Kind, body []byte, k *record.PrivateKey) []byte {
	t.Helper()
	r, err := record.Sign(kind, body, k)
	if err != nil {
		t.Fatal(err)
	}
	return r.Marshal()
}

// TestVaultTrustModel runs the vault service on a real 3-node cluster and
// proves the trust model's lines on it: "a grantee can NOT read data that
// was not granted to it, or keep reading new versions after revocation";
// "one node can NOT read vault data" (the nodes store ciphertext only);
// "a malicious peer can NOT change what another party registered, undo a
// revocation, or make honest nodes disagree". Node 3 is played as the
// malicious node: it pushes forged boxes, grants and revocations to the
// honest nodes 1 and 2, which refuse them and change nothing.
func TestVaultTrustModel(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	us := newVaultUsers(t, c, "alice", "bob", "mallory")
	alice, bob, mallory := us[0], us[1], us[2]
	const dataID = "6c1b3a52-0d7e-4f38-9a41-2b7c5e9d0f13"
	secret1 := []byte("alice passport P1234567 born 1990-01-01")
	secret2 := []byte("alice new address 12 Rue Verte, Lyon")

	// The owner writes version 1 through node 1; every node serves it.
	if _, err := c.Client(1).VaultPut(ctx, alice.owner, dataID, 1, secret1); err != nil {
		t.Fatalf("VaultPut: %v", err)
	}
	for id := uint16(1); id <= 3; id++ {
		waitFor(t, func() error {
			pt, _, err := c.Client(id).VaultOpen(ctx, alice.owner, dataID, 0)
			if err == nil && !bytes.Equal(pt, secret1) {
				t.Fatalf("node %d: the box opens to something else", id)
			}
			return err
		})
	}

	t.Run("no grant, no read", func(t *testing.T) {
		// Bob asks for alice's box as himself: he has none.
		_, err := c.Client(2).VaultGet(ctx, bob.owner.Approver, bob.scope, bob.account, dataID, 0)
		if apiCode(err) != api.CodeNotFound {
			t.Fatalf("bob reads data id as his own: %v", err)
		}
		// Bob asks as alice, with his own approval: auth refuses.
		_, err = c.Client(2).VaultGet(ctx, bob.owner.Approver, alice.scope, alice.account, dataID, 0)
		if code := apiCode(err); code < api.CodeAuthUnknown || code > api.CodeAuthMissing {
			t.Fatalf("bob reads alice's box with his approval: %v", err)
		}
		// No grant exists: any grant id is refused.
		_, err = c.Client(2).VaultReadCopy(ctx, bob.owner.Approver, bob.scope, bob.account, strings.Repeat("ab", 32), bob.owner.Key)
		if apiCode(err) != api.CodeNotFound {
			t.Fatalf("bob reads a copy that was never granted: %v", err)
		}
	})

	grantee := client.VaultGrantee{Scope: bob.scope, Account: bob.account, Key: bob.owner.Key.Public()}
	locked, err := c.Client(1).VaultGrant(ctx, alice.owner, dataID, 1, grantee, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatalf("VaultGrant (timelocked): %v", err)
	}
	open, err := c.Client(1).VaultGrant(ctx, alice.owner, dataID, 1, grantee, time.Time{})
	if err != nil {
		t.Fatalf("VaultGrant: %v", err)
	}
	for id := uint16(1); id <= 3; id++ {
		for _, g := range []string{locked, open} {
			waitFor(t, func() error {
				pt, err := c.Client(id).VaultReadCopy(ctx, bob.owner.Approver, bob.scope, bob.account, g, bob.owner.Key)
				if err == nil && !bytes.Equal(pt, secret1) {
					t.Fatalf("node %d: the copy opens to something else", id)
				}
				return err
			})
		}
	}
	// The grant is bob's: mallory gets nothing from it, even naming it.
	if _, err := c.Client(2).VaultReadCopy(ctx, mallory.owner.Approver, mallory.scope, mallory.account, open, mallory.owner.Key); apiCode(err) != api.CodeNotFound {
		t.Fatalf("mallory reads bob's copy: %v", err)
	}

	// Revoking before the timelock: the gateway refuses.
	if err := c.Client(1).VaultRevoke(ctx, alice.owner, locked); apiCode(err) != api.CodeInvalidInput || !strings.Contains(err.Error(), "timelocked") {
		t.Fatalf("revocation before the timelock: %v", err)
	}

	t.Run("forged records pushed by a malicious node", func(t *testing.T) {
		evil := c.Evil(3)
		box := api.VaultBox{Scope: alice.scope, Account: alice.account, DataID: dataID, Version: 9, EncryptorKey: [32]byte{1}, Content: bytes.Repeat([]byte{2}, 64)}
		badSig := vaultRecord(t, vaultsvc.KindBox, box.Marshal(), alice.rk)
		badSig[len(badSig)-1] ^= 1
		lockedID, _ := hex.DecodeString(locked)
		openID, _ := hex.DecodeString(open)
		early := api.VaultRevoke{Scope: alice.scope, Account: alice.account, RevokedAt: time.Now().Unix()}
		copy(early.Grant[:], lockedID)
		wrongOwner := api.VaultRevoke{Scope: mallory.scope, Account: mallory.account, RevokedAt: time.Now().Unix()}
		copy(wrongOwner.Grant[:], openID)
		toMallory := api.VaultGrant{Scope: alice.scope, Account: alice.account, DataID: dataID, Version: 1,
			GranteeScope: mallory.scope, GranteeAccount: mallory.account, ContentHash: [32]byte{7}, CopyContent: bytes.Repeat([]byte{3}, 64)}
		forged := map[string][]byte{
			"box signed by another account's key":    vaultRecord(t, vaultsvc.KindBox, box.Marshal(), mallory.rk),
			"box with a bad signature":               badSig,
			"grant of alice's box signed by mallory": vaultRecord(t, vaultsvc.KindGrant, toMallory.Marshal(), mallory.rk),
			"revocation before the timelock":         vaultRecord(t, vaultsvc.KindRevoke, early.Marshal(), alice.rk),
			"revocation of alice's grant by mallory": vaultRecord(t, vaultsvc.KindRevoke, wrongOwner.Marshal(), mallory.rk),
			"box with a trailing body byte":          vaultRecord(t, vaultsvc.KindBox, append(box.Marshal(), 0), alice.rk),
		}
		for name, rec := range forged {
			for _, to := range []uint16{1, 2} {
				_, err := evil.Call(ctx, to, "replica.push", append([]byte{1}, rec...))
				var re *transport.RemoteError
				if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") {
					t.Fatalf("%s: push to node %d: %v", name, to, err)
				}
				if ok, err := c.Node(to).Replica().Has(ctx, replica.RecordID(rec)); err != nil || ok {
					t.Fatalf("%s: node %d stored it: %v %v", name, to, ok, err)
				}
			}
		}
		// Served in catch-up: node 3 writes them into its own log, as a
		// modified build would; honest nodes pulling it skip them all.
		for _, rec := range forged {
			if _, err := evil.Node().Store().Append(ctx, replica.LogStream, rec); err != nil {
				t.Fatal(err)
			}
		}
		for _, id := range []uint16{1, 2} {
			if err := c.Node(id).Replica().CatchUp(ctx); err != nil {
				t.Fatalf("node %d: CatchUp: %v", id, err)
			}
			for name, rec := range forged {
				if ok, err := c.Node(id).Replica().Has(ctx, replica.RecordID(rec)); err != nil || ok {
					t.Fatalf("%s: node %d stored it from catch-up: %v %v", name, id, ok, err)
				}
			}
		}
		// Nothing changed: the box is still version 1, both copies still
		// open for bob, mallory received nothing.
		for _, id := range []uint16{1, 2} {
			pt, it, err := c.Client(id).VaultOpen(ctx, alice.owner, dataID, 0)
			if err != nil || it.Version != 1 || !bytes.Equal(pt, secret1) {
				t.Fatalf("node %d: alice's box after the forgeries: version %v, %v", id, it, err)
			}
			for _, g := range []string{locked, open} {
				if _, err := c.Client(id).VaultReadCopy(ctx, bob.owner.Approver, bob.scope, bob.account, g, bob.owner.Key); err != nil {
					t.Fatalf("node %d: bob's copy after the forgeries: %v", id, err)
				}
			}
			l, err := c.Client(id).VaultList(ctx, mallory.owner.Approver, mallory.scope, mallory.account)
			if err != nil || len(l.Received) != 0 || len(l.Boxes) != 0 {
				t.Fatalf("node %d: mallory's list: %+v %v", id, l, err)
			}
		}
	})

	t.Run("a malicious peer answering about revocations", func(t *testing.T) {
		evil := c.Evil(3)
		honest, err := vaultsvc.New(c.Node(3))
		if err != nil {
			t.Fatal(err)
		}
		defer evil.Handle(api.PeerVaultRevocation, honest.PeerRPCs()[api.PeerVaultRevocation])
		// A forged revocation (by mallory, of alice's grant) is checked
		// and dropped: bob still reads his copy through node 1.
		openID, _ := hex.DecodeString(open)
		v := api.VaultRevoke{Scope: alice.scope, Account: alice.account, RevokedAt: time.Now().Unix() - 1}
		copy(v.Grant[:], openID)
		forgedRevoke := vaultRecord(t, vaultsvc.KindRevoke, v.Marshal(), mallory.rk)
		evil.Handle(api.PeerVaultRevocation, func(context.Context, uint16, []byte) ([]byte, error) { return forgedRevoke, nil })
		if _, err := c.Client(1).VaultReadCopy(ctx, bob.owner.Approver, bob.scope, bob.account, open, bob.owner.Key); err != nil {
			t.Fatalf("a forged revocation answer stopped the read: %v", err)
		}
		// A peer that does not answer: node 1 cannot tell the grant is
		// not revoked, and refuses to serve the copy (fails closed).
		evil.Handle(api.PeerVaultRevocation, func(context.Context, uint16, []byte) ([]byte, error) { return nil, errors.New("no") })
		if _, err := c.Client(1).VaultReadCopy(ctx, bob.owner.Approver, bob.scope, bob.account, open, bob.owner.Key); apiCode(err) != api.CodeUnavailable {
			t.Fatalf("a silent peer: %v", err)
		}
		// The owner's own reads do not depend on it.
		if _, _, err := c.Client(1).VaultOpen(ctx, alice.owner, dataID, 0); err != nil {
			t.Fatalf("owner read with a silent peer: %v", err)
		}
	})

	// Node 2 misses the revocation: it refuses every push from now on
	// (nodes 1 and 3 make the write quorum without it), and its periodic
	// catch-up is 30 s away. Before it serves a copy it must ask its
	// peers.
	c.Evil(2).Handle("replica.push", func(context.Context, uint16, []byte) ([]byte, error) {
		return nil, errors.New("not now")
	})
	// The owner revokes the grant without timelock; then writes version 2.
	if err := c.Client(1).VaultRevoke(ctx, alice.owner, open); err != nil {
		t.Fatalf("VaultRevoke: %v", err)
	}
	if _, err := c.Node(2).Store().Get(ctx, "vault/revoked", open); err == nil {
		t.Fatal("node 2 got the revocation pushed: the test does not test asking the peers before serving")
	}
	if _, err := c.Client(1).VaultPut(ctx, alice.owner, dataID, 2, secret2); err != nil {
		t.Fatalf("VaultPut version 2: %v", err)
	}

	t.Run("after revocation", func(t *testing.T) {
		for id := uint16(1); id <= 3; id++ {
			// Every node refuses the revoked copy, node 2 too (each
			// asks its peers before serving one).
			_, err := c.Client(id).VaultReadCopy(ctx, bob.owner.Approver, bob.scope, bob.account, open, bob.owner.Key)
			if apiCode(err) != api.CodeAuthRevoked {
				t.Fatalf("node %d serves the revoked copy: %v", id, err)
			}
			// The newer version: bob cannot read it as his, nor as alice.
			if _, err := c.Client(id).VaultGet(ctx, bob.owner.Approver, bob.scope, bob.account, dataID, 2); apiCode(err) != api.CodeNotFound {
				t.Fatalf("node %d: bob reads version 2: %v", id, err)
			}
			if _, err := c.Client(id).VaultGet(ctx, bob.owner.Approver, alice.scope, alice.account, dataID, 2); err == nil {
				t.Fatalf("node %d: bob reads version 2 as alice", id)
			}
			l, err := c.Client(id).VaultList(ctx, bob.owner.Approver, bob.scope, bob.account)
			if err != nil || len(l.Received) != 1 || l.Received[0].ID != locked {
				t.Fatalf("node %d: bob's list after revocation: %+v %v", id, l, err)
			}
		}
		// Even holding version 2's ciphertext (a node could hand it
		// over), bob's key does not open it: it is sealed to alice.
		waitFor(t, func() error {
			_, err := c.Client(3).VaultGet(ctx, alice.owner.Approver, alice.scope, alice.account, dataID, 2)
			return err
		})
		it, err := c.Client(3).VaultGet(ctx, alice.owner.Approver, alice.scope, alice.account, dataID, 0)
		if err != nil || it.Version != 2 {
			t.Fatalf("alice's latest version on node 3: %+v %v", it, err)
		}
		content, err := base64.StdEncoding.DecodeString(it.Content)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := vault.ParsePublicKeyBase64(it.EncryptorKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vault.Open(bob.vk, content, ek); !errors.Is(err, vault.ErrOpen) {
			t.Fatalf("version 2 with bob's key: %v", err)
		}
		if pt, err := vault.Open(alice.vk, content, ek); err != nil || !bytes.Equal(pt, secret2) {
			t.Fatalf("version 2 with alice's key: %v", err)
		}
	})

	t.Run("nodes store ciphertext only", func(t *testing.T) {
		// Every file of every node's data dir (SQLite database, WAL,
		// sealed keys, config) is searched for the plaintexts and for
		// a 16-byte piece of each.
		needles := [][]byte{secret1, secret2, secret1[:16], secret2[len(secret2)-16:]}
		files := 0
		err := filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files++
			for _, n := range needles {
				if bytes.Contains(b, n) {
					t.Errorf("%s holds plaintext", filepath.Base(path))
				}
			}
			return nil
		})
		if err != nil || files == 0 {
			t.Fatalf("walking the data dirs: %d files, %v", files, err)
		}
		// The store does hold the boxes (as ciphertext): the search
		// looked in the right place.
		es, err := c.Node(2).Store().Records(ctx, replica.LogStream, 0, 0)
		if err != nil || len(es) == 0 {
			t.Fatalf("node 2's log: %d records, %v", len(es), err)
		}
	})
}

// waitFor retries f (at most 10 s) until it returns nil.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
