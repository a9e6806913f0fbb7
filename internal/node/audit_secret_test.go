//go:build keymesh_adversary

package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/audit"
)

// TestNoSecretInAuditLog runs real key generation and signing on a real
// 3-node cluster, then searches every byte of every node's stored audit
// log (chain, chain end, signed heads, the heads it holds from its peers)
// and of its JSON export for the secrets the test knows: each node's key
// share, the signed message, the approval's proofs and signature, and the
// developer's and the user's private keys, raw, hex and base64.
func TestNoSecretInAuditLog(t *testing.T) {
	ctx := context.Background()
	tc := newTestCluster(t)
	for _, n := range tc.nodes {
		wantReady(t, n, 200)
	}
	dev, users := newWalletScope(t, tc.clients, "alice")
	scope := users[0].scope
	userKey, err := client.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.clients[0].RegisterDelegated(ctx, dev, scope, "bob", userKey.Public()); err != nil {
		t.Fatal(err)
	}
	bob := &walletUser{scope: scope, account: "bob", signer: client.UserKeySigner(userKey, scope, "bob")}
	var created api.CreateAccountResult
	if err := tc.clients[1].Call(client.WithProofs(ctx, bob.approve(t, api.MethodCreateAccount, common.Address{}, [32]byte{})),
		api.MethodCreateAccount, api.CreateAccountParams{Scope: scope, Account: "bob"}, &created); err != nil {
		t.Fatalf("createAccount: %v", err)
	}
	addr := common.HexToAddress(created.Address)
	var nonce [16]byte
	rand.Read(nonce[:])
	msg := []byte("the plaintext a user signs " + hex.EncodeToString(nonce[:]))
	params := []any{hexutil.Encode(msg), addr.Hex()}
	proofs := bob.approveParams(t, api.MethodPersonalSign, params)
	var sig string
	if err := tc.clients[0].Call(client.WithProofs(ctx, proofs), api.MethodPersonalSign, params, &sig); err != nil {
		t.Fatalf("personal_sign: %v", err)
	}
	for _, n := range tc.nodes {
		if _, err := n.PublishAuditHead(ctx); err != nil {
			t.Fatal(err)
		}
	}

	secrets := map[string][]byte{
		"message":       msg,
		"proofs":        []byte(proofs),
		"developer key": []byte(dev.MarshalPrivate()),
		"user key":      []byte(userKey.MarshalPrivate()),
		"the signature": hexutil.MustDecode(sig),
	}
	ps, err := api.ParseProofs(proofs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps.Approvals {
		s, _ := base64.RawURLEncoding.DecodeString(p.Sig)
		secrets["approval signature"] = s
	}
	for _, k := range []string{dev.MarshalPrivate(), userKey.MarshalPrivate()} {
		if _, b64, ok := strings.Cut(k, ":"); ok {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if raw, err := enc.DecodeString(b64); err == nil {
					secrets["private key bytes of "+k[:5]] = raw
				}
			}
		}
	}
	for i, n := range tc.nodes {
		sh, err := n.TestingOnlyWallet().TestingOnlyShare(ctx, addr)
		if err != nil {
			t.Fatal(err)
		}
		x := sh.SecretShare().Bytes()
		secrets["key share of node "+string(rune('1'+i))] = x[:]
	}

	for i, n := range tc.nodes {
		var blob bytes.Buffer
		for _, ns := range []string{"audit/chain", "audit/meta", "audit/peer-heads"} {
			es, err := n.Store().List(ctx, ns, "", 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				blob.WriteString(e.Key)
				blob.Write(e.Value)
			}
		}
		entries := 0
		if err := n.AuditLog().Since(ctx, timeZero, func(e *audit.Entry, h [32]byte) error {
			entries++
			return json.NewEncoder(&blob).Encode(e.JSON(h))
		}); err != nil {
			t.Fatal(err)
		}
		if entries < 3 || blob.Len() < 1000 {
			t.Fatalf("node %d: only %d entries (%d bytes) to search", i+1, entries, blob.Len())
		}
		for name, s := range secrets {
			if len(s) < 16 {
				t.Fatalf("secret %s too short to search for", name)
			}
			for form, v := range map[string][]byte{
				"raw": s, "hex": []byte(hex.EncodeToString(s)),
				"base64": []byte(base64.StdEncoding.EncodeToString(s)), "base64url": []byte(base64.RawURLEncoding.EncodeToString(s)),
			} {
				// Any 16-byte piece of it, not only the whole: a log
				// that kept a prefix of a secret leaks it too.
				lower := bytes.ToLower(blob.Bytes())
				for j := 0; j+16 <= len(v); j++ {
					w := v[j : j+16]
					if bytes.Contains(blob.Bytes(), w) || form == "hex" && bytes.Contains(lower, bytes.ToLower(w)) {
						t.Errorf("node %d: the audit log holds part of %s (%s)", i+1, name, form) // the secret itself is not printed
						break
					}
				}
			}
		}
	}
}
