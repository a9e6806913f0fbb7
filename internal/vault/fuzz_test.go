package vault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// Seed corpora live in testdata/fuzz/<target>/; TestWriteFuzzCorpus
// rewrites them from valid encodings made by the code under test.

func FuzzParsePublicKeyBase64(f *testing.F) {
	f.Add("3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePublicKeyBase64(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, p.String())
		}
	})
}

// fuzzRecipient is a fixed key so the corpus holds boxes that open.
func fuzzRecipient() *PrivateKey {
	k, err := NewPrivateKey(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		panic(err)
	}
	return k
}

const fuzzMessage = "fuzz me"

// FuzzOpen: whatever the content and encryptor key, Open does not panic,
// and the only inputs that open are the sealed ones (no malleability).
func FuzzOpen(f *testing.F) {
	r := fuzzRecipient()
	s, _ := SealTo(r.Public(), []byte(fuzzMessage))
	f.Add(s.Content, s.EncryptorPublicKey[:])
	f.Fuzz(func(t *testing.T, content, enc []byte) {
		pub, err := ParsePublicKey(enc)
		if err != nil {
			return
		}
		pt, err := Open(r, content, pub)
		if err != nil {
			return
		}
		if string(pt) != fuzzMessage {
			t.Fatalf("forged box opened to %q", pt)
		}
	})
}

func FuzzCredentialBinary(f *testing.F) {
	f.Add([]byte{typeCredential, credentialVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Credential
		if err := c.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := c.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded but does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("two encodings of one credential")
		}
	})
}

func FuzzCredentialJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCredentialJSON(b)
		if err != nil {
			return
		}
		j, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseCredentialJSON(j)
		if err != nil {
			t.Fatalf("re-encoded JSON does not parse: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatal("JSON round trip changed the credential")
		}
		if _, err := c.MarshalBinary(); err != nil {
			t.Fatalf("parsed JSON does not encode in binary: %v", err)
		}
	})
}

func FuzzGrantBinary(f *testing.F) {
	f.Add([]byte{typeGrant, grantVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var g Grant
		if err := g.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := g.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded but does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("two encodings of one grant")
		}
	})
}

func FuzzDelegatedGrantBinary(f *testing.F) {
	f.Add([]byte{typeDelegatedGrant, delegatedVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s SignedDelegatedGrant
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded but does not encode: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("two encodings of one delegated grant")
		}
		if _, err := s.Grant.Message(); err != nil {
			t.Fatalf("decoded grant has no message: %v", err)
		}
	})
}

func FuzzDelegatedGrantJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s SignedDelegatedGrant
		if err := json.Unmarshal(b, &s); err != nil {
			return
		}
		j, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		var s2 SignedDelegatedGrant
		if err := json.Unmarshal(j, &s2); err != nil {
			t.Fatalf("re-encoded JSON does not parse: %v", err)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatal("JSON round trip changed the grant")
		}
	})
}

// idOS's own check of a KDF salt (idOSKeyDerivation.ts).
var idosUUIDv4 = regexp.MustCompile(`(?i)^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[a-f0-9]{4}-[a-f0-9]{12}$`)

// FuzzValidUserID is differential: ValidUserID accepts exactly what idOS's
// regular expression accepts.
func FuzzValidUserID(f *testing.F) {
	f.Add(testUserID)
	f.Add("9F51B3B2-4CBE-4C2B-8EA3-0B0C1B2F1A11")
	f.Fuzz(func(t *testing.T, s string) {
		got := ValidUserID(s) == nil
		// Go's $ matches only at the end of text without (?m), as JS's does.
		if want := idosUUIDv4.MatchString(s); got != want {
			t.Fatalf("ValidUserID(%q) = %v, idOS regexp says %v", s, got, want)
		}
	})
}

// TestWriteFuzzCorpus writes valid encodings into testdata/fuzz as seed
// corpora. It runs only with VAULT_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("VAULT_WRITE_CORPUS") != "1" {
		t.Skip("set VAULT_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, i int, args ...any) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				fmt.Fprintf(&b, "[]byte(%q)\n", v)
			case string:
				fmt.Fprintf(&b, "string(%q)\n", v)
			}
		}
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%d", i)), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := fuzzRecipient()
	ik, _ := NewIssuerKey(bytes.Repeat([]byte{5}, 32))
	for i, n := range []int{0, 1, 100} {
		s, _ := SealTo(r.Public(), []byte(fuzzMessage))
		write("FuzzOpen", i, s.Content, s.EncryptorPublicKey[:])
		write("FuzzParsePublicKeyBase64", i, s.EncryptorPublicKey.String())
		c, err := Issue(ik, testUserID, string(bytes.Repeat([]byte("n"), n)), bytes.Repeat([]byte{1}, n), r.Public())
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			c.UserID, c.ContentHash = "", ContentHash{}
		}
		cb, _ := c.MarshalBinary()
		write("FuzzCredentialBinary", i, cb)
		cj, _ := json.Marshal(c)
		write("FuzzCredentialJSON", i, cj)
		g, err := NewGrant(testUserID, r.Public(), c.ID, time.Unix(int64(n)*1_000_000, 0), c.ContentHash)
		if err != nil {
			g, _ = NewGrant(testUserID, r.Public(), c.ID, time.Time{}, HashContent(nil))
		}
		gb, _ := g.MarshalBinary()
		write("FuzzGrantBinary", i, gb)
		nb := time.Unix(1_700_000_000+int64(n), 0).UTC()
		sd := SignedDelegatedGrant{Grant: DelegatedGrant{
			ID: c.ID, Owner: "0x311CEe6648df431EbbeA38dfB680C28661c893Ea", Grantee: fmt.Sprintf("grantee-%d", n),
			IssuerPublicKey: ik.Public(), AccessGrantTimelock: nb, NotBefore: nb, NotAfter: nb.Add(time.Hour),
		}}
		sd.Signature[64] = 27
		db, err := sd.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		write("FuzzDelegatedGrantBinary", i, db)
		dj, _ := json.Marshal(&sd)
		write("FuzzDelegatedGrantJSON", i, dj)
	}
	for i, s := range []string{testUserID, "9F51B3B2-4CBE-4C2B-8EA3-0B0C1B2F1A11", "9f51b3b2-4cbe-3c2b-8ea3-0b0c1b2f1a11", "9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a11\n"} {
		write("FuzzValidUserID", i, s)
	}
}
