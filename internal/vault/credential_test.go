package vault

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const testUserID = "9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a11"

func mustIssuer(t testing.TB) *IssuerKey {
	t.Helper()
	k, err := GenerateIssuerKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIssueVerifyOpen(t *testing.T) {
	ik, holder := mustIssuer(t), mustKey(t)
	plain := []byte(`{"name":"Ada"}`)
	c, err := Issue(ik, testUserID, `{"id":"x","status":"approved"}`, plain, holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidID(c.ID); err != nil || c.ID[14] != '4' {
		t.Fatalf("id %q: %v", c.ID, err)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	// The signatures are plain Ed25519 over the idOS messages.
	pub := ed25519.PublicKey(c.IssuerAuthPublicKey[:])
	if !ed25519.Verify(pub, []byte(c.PublicNotes), c.PublicNotesSignature[:]) ||
		!ed25519.Verify(pub, append(c.PublicNotesSignature[:], c.Content...), c.BroaderSignature[:]) {
		t.Fatal("signatures are not over the idOS messages")
	}
	got, err := c.Open(holder)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %v", err)
	}
	if c.ContentHash != HashContent(plain) {
		t.Fatal("content hash is not SHA-256 of the plaintext")
	}
	// The issuer cannot open what it issued: the sender key was ephemeral.
	if c.EncryptorPublicKey == holder.Public() {
		t.Fatal("encryptor key is the holder's")
	}
}

func TestCredentialSignatureTamper(t *testing.T) {
	ik, holder := mustIssuer(t), mustKey(t)
	c, err := Issue(ik, testUserID, "notes", []byte("data"), holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	mut := []func(c *Credential){
		func(c *Credential) { c.PublicNotes += " " },
		func(c *Credential) { c.Content[len(c.Content)-1] ^= 1 },
		func(c *Credential) { c.Content[0] ^= 1 },
		func(c *Credential) { c.PublicNotesSignature[5] ^= 1 },
		func(c *Credential) { c.BroaderSignature[63] ^= 0x10 },
		func(c *Credential) { c.IssuerAuthPublicKey = mustIssuer(t).Public() },
	}
	for i, m := range mut {
		cc := *c
		cc.Content = bytes.Clone(c.Content)
		m(&cc)
		if err := cc.Verify(); !errors.Is(err, ErrSignature) {
			t.Fatalf("mutation %d: %v, want ErrSignature", i, err)
		}
	}
	if err := c.Verify(); err != nil {
		t.Fatal("original no longer verifies")
	}
	// Re-signing by another issuer verifies under that issuer only.
	other := mustIssuer(t)
	c.Sign(other)
	if err := c.Verify(); err != nil || c.IssuerAuthPublicKey != other.Public() {
		t.Fatal("re-sign failed")
	}
}

func TestCredentialContentHashChecked(t *testing.T) {
	ik, holder := mustIssuer(t), mustKey(t)
	c, err := Issue(ik, testUserID, "", []byte("data"), holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	c.ContentHash[0] ^= 1
	if _, err := c.Open(holder); !errors.Is(err, ErrContentHash) {
		t.Fatalf("%v, want ErrContentHash", err)
	}
	c.ContentHash = ContentHash{}
	if _, err := c.Open(holder); err != nil {
		t.Fatalf("unset hash: %v", err)
	}
}

func TestIssueChecks(t *testing.T) {
	ik, holder := mustIssuer(t), mustKey(t)
	if _, err := Issue(ik, "nope", "", nil, holder.Public()); !errors.Is(err, ErrInvalidUserID) {
		t.Fatalf("bad user id: %v", err)
	}
	if _, err := Issue(ik, testUserID, "\xff", nil, holder.Public()); err == nil {
		t.Fatal("invalid UTF-8 notes accepted")
	}
	if _, err := Issue(ik, testUserID, "", nil, PublicKey{}); !errors.Is(err, ErrLowOrder) {
		t.Fatalf("low-order recipient: %v", err)
	}
}

func TestIssuerKeyForms(t *testing.T) {
	seed := bytes.Repeat([]byte{9}, 32)
	a, err := NewIssuerKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	full := ed25519.NewKeyFromSeed(seed)
	b, err := NewIssuerKey(full)
	if err != nil || a.Public() != b.Public() {
		t.Fatal("64-byte form differs")
	}
	full[40] ^= 1
	if _, err := NewIssuerKey(full); err == nil {
		t.Fatal("mismatched public half accepted")
	}
	if _, err := NewIssuerKey(seed[:31]); err == nil {
		t.Fatal("31-byte key accepted")
	}
	p, err := ParseIssuerPublicKeyHex(a.Public().String())
	if err != nil || p != a.Public() {
		t.Fatal("hex round trip")
	}
	if _, err := ParseIssuerPublicKeyHex("0x" + a.Public().String()[2:]); err == nil {
		t.Fatal("0x form accepted")
	}
}

func TestCredentialJSON(t *testing.T) {
	ik, holder := mustIssuer(t), mustKey(t)
	c, err := Issue(ik, testUserID, "notes ✓", []byte("data"), holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{`"user_id"`, `"public_notes"`, `"content"`, `"encryptor_public_key"`, `"issuer_auth_public_key":"` + c.IssuerAuthPublicKey.String() + `"`, `"public_notes_signature"`, `"broader_signature"`, `"content_hash":"` + c.ContentHash.String() + `"`} {
		if !bytes.Contains(j, []byte(f)) {
			t.Fatalf("JSON lacks %s: %s", f, j)
		}
	}
	var back Credential
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatal(err)
	}
	j2, _ := json.Marshal(&back)
	if !bytes.Equal(j, j2) {
		t.Fatal("JSON round trip differs")
	}
	bad := []string{
		string(j) + " {}",
		strings.Replace(string(j), `"content"`, `"contnt"`, 1),
		strings.Replace(string(j), `"user_id":"`+testUserID, `"user_id":"x`, 1),
		strings.Replace(string(j), `"content_hash":"`, `"content_hash":"00`, 1),
		strings.Replace(string(j), `"broader_signature":"`, `"broader_signature":"AAAA`, 1),
		`null`,
		`[]`,
	}
	for i, b := range bad {
		if _, err := ParseCredentialJSON([]byte(b)); err == nil {
			t.Errorf("bad JSON %d accepted", i)
		}
	}
}

func TestCredentialBinary(t *testing.T) {
	ik, holder := mustIssuer(t), mustKey(t)
	c, err := Issue(ik, testUserID, "notes", []byte("data"), holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Credential
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(); err != nil {
		t.Fatal(err)
	}
	if got, err := back.Open(holder); err != nil || string(got) != "data" {
		t.Fatal("decoded credential does not open")
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("not canonical")
	}
	for _, bad := range [][]byte{append(bytes.Clone(b), 0), b[:len(b)-1], nil, {typeGrant, 1}} {
		var x Credential
		if err := x.UnmarshalBinary(bad); err == nil {
			t.Errorf("accepted %d bytes", len(bad))
		}
	}
	v := bytes.Clone(b)
	v[1] = 2
	if err := back.UnmarshalBinary(v); err == nil || !strings.Contains(err.Error(), "version") {
		t.Fatalf("version 2: %v", err)
	}
}

// A leaked issuer key opens nothing: the content is sealed under an
// ephemeral key, so neither the issuer's Ed25519 key nor the X25519 key
// derived from its seed (RFC 8032 §5.1.5 clamped scalar) opens it.
func TestLeakedIssuerKeyOpensNothing(t *testing.T) {
	seed := bytes.Repeat([]byte{0x11}, 32)
	ik, _ := NewIssuerKey(seed)
	holder := mustKey(t)
	c, err := Issue(ik, testUserID, "", []byte("secret"), holder.Public())
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.Sum512(seed)
	for _, b := range [][]byte{seed, h[:32]} {
		k, err := NewPrivateKey(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []PublicKey{c.EncryptorPublicKey, holder.Public()} {
			if _, err := Open(k, c.Content, enc); !errors.Is(err, ErrOpen) {
				t.Fatalf("issuer-derived key: %v, want ErrOpen", err)
			}
		}
	}
}
