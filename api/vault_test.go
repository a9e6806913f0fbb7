package api

import (
	"bytes"
	"errors"
	"testing"
)

func vaultSeeds() (*VaultBox, *VaultGrant, *VaultRevoke) {
	content := bytes.Repeat([]byte{7}, MinVaultContent+5)
	b := &VaultBox{Scope: "0123456789abcdef0123456789abcdef", Account: "alice", DataID: "01234567-89ab-4def-8123-456789abcdef", Version: 1, EncryptorKey: [32]byte{1}, Content: content}
	g := &VaultGrant{Scope: b.Scope, Account: "alice", DataID: b.DataID, Version: 1, GranteeScope: b.Scope, GranteeAccount: "bob",
		GranteeKey: [32]byte{2}, LockedUntil: 1700000000, ContentHash: [32]byte{3}, CopyEncryptorKey: [32]byte{4}, CopyContent: content}
	r := &VaultRevoke{Scope: b.Scope, Account: "alice", Grant: [32]byte{5}, RevokedAt: 1700000001}
	return b, g, r
}

func TestVaultBodiesRoundTrip(t *testing.T) {
	b, g, r := vaultSeeds()
	if d, err := DecodeVaultBox(b.Marshal()); err != nil || !bytes.Equal(d.Marshal(), b.Marshal()) {
		t.Fatalf("box: %v", err)
	}
	if d, err := DecodeVaultGrant(g.Marshal()); err != nil || !bytes.Equal(d.Marshal(), g.Marshal()) {
		t.Fatalf("grant: %v", err)
	}
	if d, err := DecodeVaultRevoke(r.Marshal()); err != nil || *d != *r {
		t.Fatalf("revoke: %v", err)
	}
}

func TestVaultBodiesRefused(t *testing.T) {
	b, g, r := vaultSeeds()
	bad := map[string][]byte{}
	m := *b
	m.Version = 0
	bad["box version 0"] = m.Marshal()
	m = *b
	m.DataID = "01234567-89AB-4def-8123-456789abcdef"
	bad["box uppercase data id"] = m.Marshal()
	m = *b
	m.Content = m.Content[:MinVaultContent-1]
	bad["box short content"] = m.Marshal()
	m = *b
	m.Account = "a/b"
	bad["box account with a slash"] = m.Marshal()
	bad["box trailing byte"] = append(b.Marshal(), 0)
	bad["box other body version"] = append([]byte{2}, b.Marshal()[1:]...)
	n := *g
	n.GranteeAccount = "alice"
	bad["grant to its owner"] = n.Marshal()
	n = *g
	n.ContentHash = [32]byte{}
	bad["grant without content hash"] = n.Marshal()
	n = *g
	n.LockedUntil = -1
	bad["grant negative timelock"] = n.Marshal()
	bad["grant truncated"] = g.Marshal()[:40]
	bad["revoke trailing byte"] = append(r.Marshal(), 1)
	q := *r
	q.RevokedAt = -1
	bad["revoke negative time"] = q.Marshal()
	for name, p := range bad {
		_, e1 := DecodeVaultBox(p)
		_, e2 := DecodeVaultGrant(p)
		_, e3 := DecodeVaultRevoke(p)
		for _, err := range []error{e1, e2, e3} {
			if !errors.Is(err, ErrVaultBody) {
				t.Errorf("%s: decoded (%v)", name, err)
			}
		}
	}
}

func TestVaultReadHashBindsEveryField(t *testing.T) {
	p := VaultGetParams{Scope: "s", Account: "a", DataID: "d", Version: 1, Grant: "g"}
	seen := map[[32]byte]string{VaultReadHash(MethodVaultGet, p): "base"}
	for name, q := range map[string]VaultGetParams{
		"scope":   {Scope: "t", Account: "a", DataID: "d", Version: 1, Grant: "g"},
		"account": {Scope: "s", Account: "b", DataID: "d", Version: 1, Grant: "g"},
		"data":    {Scope: "s", Account: "a", DataID: "e", Version: 1, Grant: "g"},
		"version": {Scope: "s", Account: "a", DataID: "d", Version: 2, Grant: "g"},
		"grant":   {Scope: "s", Account: "a", DataID: "d", Version: 1, Grant: "h"},
		"shifted": {Scope: "s", Account: "ad", DataID: "", Version: 1, Grant: "g"},
	} {
		h := VaultReadHash(MethodVaultGet, q)
		if prev, ok := seen[h]; ok {
			t.Fatalf("%s hashes like %s", name, prev)
		}
		seen[h] = name
	}
	if VaultReadHash(MethodVaultList, p) == VaultReadHash(MethodVaultGet, p) {
		t.Fatal("the method is not bound")
	}
}

// FuzzDecodeVaultBodies: whatever decodes re-encodes to the same bytes
// (one encoding per value), for the three bodies.
func FuzzDecodeVaultBodies(f *testing.F) {
	b, g, r := vaultSeeds()
	f.Add(b.Marshal())
	f.Add(g.Marshal())
	f.Add(r.Marshal())
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, p []byte) {
		if v, err := DecodeVaultBox(p); err == nil && !bytes.Equal(v.Marshal(), p) {
			t.Fatalf("box %x re-encodes to %x", p, v.Marshal())
		}
		if v, err := DecodeVaultGrant(p); err == nil && !bytes.Equal(v.Marshal(), p) {
			t.Fatalf("grant %x re-encodes to %x", p, v.Marshal())
		}
		if v, err := DecodeVaultRevoke(p); err == nil && !bytes.Equal(v.Marshal(), p) {
			t.Fatalf("revoke %x re-encodes to %x", p, v.Marshal())
		}
	})
}
