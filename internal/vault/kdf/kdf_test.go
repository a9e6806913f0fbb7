package kdf

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/vault"
)

var long = flag.Bool("long", false, "run the scrypt vectors that need up to 1 GiB of memory")

const (
	userID = "9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a11"
	// From idos-sdk-js packages/utils/src/encryption/index.test.ts.
	idosKey = "8iTwhZxrtQGKVV5OMthD5DxFc8c6B8h9MnU2Sh6JTTM="
)

func TestIdOSKnownAnswer(t *testing.T) {
	k, err := Derive(V0_1, "correct horse battery staple", userID)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.StdEncoding.EncodeToString(k.Bytes()); got != idosKey {
		t.Fatalf("derived %s, want %s", got, idosKey)
	}
	if Latest != V0_1 {
		t.Fatal("latest version is not idOS's default")
	}
}

type scryptVector struct {
	Password   string `json:"password"`
	Salt       string `json:"salt"`
	N          int    `json:"N"`
	R          int    `json:"r"`
	P          int    `json:"p"`
	DkLen      int    `json:"dkLen"`
	DerivedKey string `json:"derivedKey"`
}

// RFC 7914 §12 (entries 0-3 of scrypt-js's file) and scrypt-js's extras,
// through the same scrypt Derive calls.
func TestScryptVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/scrypt-test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []scryptVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 8 {
		t.Fatalf("%d vectors, want 8", len(vs))
	}
	ran := 0
	for i, v := range vs {
		if uint64(v.N)*uint64(v.R) > 16384*8 && !*long {
			continue // needs more than 16 MiB: -long only
		}
		pw, _ := hex.DecodeString(v.Password)
		salt, _ := hex.DecodeString(v.Salt)
		dk, err := scryptKey(pw, salt, v.N, v.R, v.P, v.DkLen)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if hex.EncodeToString(dk) != v.DerivedKey {
			t.Fatalf("vector %d: %x", i, dk)
		}
		ran++
	}
	if ran < 3 {
		t.Fatalf("ran only %d vectors", ran)
	}
}

// RFC 7914 §12 vector 3 has exactly v0.1's N, r, p; it must agree with the
// parameters Derive uses.
func TestParamsMatchRFCVector(t *testing.T) {
	p, err := V0_1.Params()
	if err != nil {
		t.Fatal(err)
	}
	dk, err := scryptKey([]byte("pleaseletmein"), []byte("SodiumChloride"), p.N, p.R, p.P, 64)
	if err != nil {
		t.Fatal(err)
	}
	const want = "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2d5432955613f0fcf62d49705242a9af9e61e85dc0d651e40dfcf017b45575887"
	if hex.EncodeToString(dk) != want {
		t.Fatalf("got %x", dk)
	}
}

func TestNFKC(t *testing.T) {
	// U+FB01 LATIN SMALL LIGATURE FI and fullwidth letters normalise to
	// ASCII under NFKC; "Å" as A + U+030A composes to U+00C5.
	pairs := [][2]string{
		{"\ufb01re", "fire"},
		{"ｐａｓｓ", "pass"},
		{"A\u030a", "\u00c5"},
	}
	for _, p := range pairs {
		a, err := Derive(V0, p[0], userID)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Derive(V0, p[1], userID)
		if err != nil {
			t.Fatal(err)
		}
		if !a.Equal(b) {
			t.Fatalf("%q and %q derive different keys", p[0], p[1])
		}
	}
	a, _ := Derive(V0, "fire", userID)
	b, _ := Derive(V0, "fire ", userID)
	if a.Equal(b) {
		t.Fatal("different passwords derive the same key")
	}
}

func TestVersionsDiffer(t *testing.T) {
	k0, err := Derive(V0, "pw", userID)
	if err != nil {
		t.Fatal(err)
	}
	k01, err := Derive(V0_1, "pw", userID)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := Derive(V1Argon2id, "pw", userID)
	if err != nil {
		t.Fatal(err)
	}
	if k0.Equal(k01) || k01.Equal(ka) || k0.Equal(ka) {
		t.Fatal("versions derive equal keys")
	}
	for _, v := range []Version{V0, V0_1, V1Argon2id} {
		got, err := ParseVersion(v.String())
		if err != nil || got != v {
			t.Fatalf("ParseVersion(%q) = %v, %v", v.String(), got, err)
		}
	}
	if _, err := Derive(Version(99), "pw", userID); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := ParseVersion("1"); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("ParseVersion(1): %v", err)
	}
}

func TestSaltMustBeUserID(t *testing.T) {
	bad := []string{
		"",
		"not-a-uuid",
		"9f51b3b2-4cbe-3c2b-8ea3-0b0c1b2f1a11",  // version 3
		"9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a1",   // short
		"9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a111", // long
		"9f51b3b24cbe-4c2b-8ea3-0b0c1b2f1a11-",
		"9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a1g",
		"{9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a1}",
	}
	for _, s := range bad {
		_, err := Derive(V0_1, "pw", s)
		if !errors.Is(err, vault.ErrInvalidUserID) {
			t.Errorf("salt %q: %v, want ErrInvalidUserID", s, err)
		}
		if err != nil && s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error repeats the salt: %v", err)
		}
	}
	// Upper case is a valid id, and a different salt (idOS uses the string
	// as given).
	up, err := Derive(V0, "pw", strings.ToUpper(userID))
	if err != nil {
		t.Fatal(err)
	}
	low, _ := Derive(V0, "pw", userID)
	if up.Equal(low) {
		t.Fatal("case of the salt ignored")
	}
}

func TestPasswordChecks(t *testing.T) {
	for _, pw := range []string{"", "\xff\xfe", strings.Repeat("a", MaxPasswordLen+1)} {
		_, err := Derive(V0, pw, userID)
		if err == nil {
			t.Errorf("password of %d bytes accepted", len(pw))
			continue
		}
		if pw != "" && strings.Contains(err.Error(), pw) {
			t.Errorf("error holds the password")
		}
	}
}

func BenchmarkDeriveV0_1(b *testing.B) {
	for b.Loop() {
		if _, err := Derive(V0_1, "correct horse battery staple", userID); err != nil {
			b.Fatal(err)
		}
	}
}

// The RFC 7914 §12 vectors again, from pyca/cryptography's text file (an
// independent transcription of the RFC).
func TestRFC7914Text(t *testing.T) {
	b, err := os.ReadFile("testdata/rfc7914-scrypt.txt")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, block := range strings.Split(strings.TrimSpace(string(b)), "\n\n\n") {
		f := map[string]string{}
		for _, line := range strings.Split(block, "\n") {
			k, v, _ := strings.Cut(line, "=")
			f[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		var n, r, p, l int
		for k, dst := range map[string]*int{"N": &n, "r": &r, "p": &p, "LENGTH": &l} {
			if _, err := fmt.Sscan(f[k], dst); err != nil {
				t.Fatalf("COUNT %s: %s: %v", f["COUNT"], k, err)
			}
		}
		if n*r > 16384*8 && !*long {
			continue
		}
		dk, err := scryptKey([]byte(f["PASSWORD"]), []byte(f["SALT"]), n, r, p, l)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(dk) != f["DERIVED_KEY"] {
			t.Fatalf("COUNT %s: got %x", f["COUNT"], dk)
		}
		ran++
	}
	if ran != 3 && !*long || ran != 4 && *long {
		t.Fatalf("ran %d vectors", ran)
	}
}
