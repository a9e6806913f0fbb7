package config

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestIdentityCreateLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, created, err := LoadOrCreateIdentity(dir)
	if err != nil || !created {
		t.Fatalf("create: created=%v %v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file %v %v, want mode 0600", fi, err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v, want 0700", di.Mode().Perm())
	}
	again, created, err := LoadOrCreateIdentity(dir)
	if err != nil || created {
		t.Fatalf("reload: created=%v %v", created, err)
	}
	if !id.Equal(again) {
		t.Fatal("reloaded identity differs")
	}
	other, _ := GenerateIdentity()
	if id.Equal(other) {
		t.Fatal("two generated identities are equal")
	}
	// The identity signs as Ed25519 under its public key.
	msg := []byte("keymesh")
	sig, err := id.Sign(nil, msg, crypto.Hash(0))
	if err != nil || !ed25519.Verify(id.PublicKey(), msg, sig) {
		t.Fatalf("signature does not verify: %v", err)
	}
	if _, err := ParsePublicKey(id.PublicKeyString()); err != nil {
		t.Fatalf("own public key rejected: %v", err)
	}
}

func TestIdentityRefusesLooseMode(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadOrCreateIdentity(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o602} {
		os.Chmod(path, mode)
		_, _, err := LoadOrCreateIdentity(dir)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("mode %04o", mode)) || !strings.Contains(err.Error(), path) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if _, _, err := LoadOrCreateIdentity(dir); err != nil {
		t.Fatalf("mode 0400 refused: %v", err)
	}
	os.Remove(path)
	os.Symlink("/dev/null", path)
	if _, _, err := LoadOrCreateIdentity(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("symlink: %v", err)
	}
}

func TestIdentityDecodeStrict(t *testing.T) {
	id, _ := GenerateIdentity()
	good, err := encodeIdentity(id)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeIdentity(good); err != nil || !got.Equal(id) {
		t.Fatalf("round trip: %v", err)
	}
	bad := map[string][]byte{
		"trailing":   append(bytes.Clone(good), '\n'),
		"wrong type": bytes.Replace(good, []byte("PRIVATE KEY"), []byte("PUBLIC KEY"), 2),
		"not pem":    []byte("hello"),
		"empty":      nil,
		"two blocks": append(bytes.Clone(good), good...),
	}
	for name, data := range bad {
		if _, err := decodeIdentity(data); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// TestIdentityNeverPrints checks habit 5: no fmt verb, JSON or slog output
// of an Identity contains its private key in any usual encoding.
func TestIdentityNeverPrints(t *testing.T) {
	id, _ := GenerateIdentity()
	seed := id.priv.Seed()
	secrets := []string{
		hex.EncodeToString(seed), hex.EncodeToString(id.priv),
		base64.StdEncoding.EncodeToString(seed), base64.StdEncoding.EncodeToString(id.priv),
		fmt.Sprint([]byte(seed)), fmt.Sprint([]byte(id.priv)), string(seed),
	}
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", id)
		fmt.Fprintf(&out, verb+"\n", *id)
		fmt.Fprintf(&out, verb+"\n", struct{ K *Identity }{id})
		fmt.Fprintf(&out, verb+"\n", []any{*id})
	}
	j, _ := json.Marshal(id)
	out.Write(j)
	slog.New(slog.NewTextHandler(&out, nil)).Info("x", "id", id, "v", *id)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("x", "id", id)
	for _, s := range secrets {
		if strings.Contains(out.String(), s) {
			t.Fatalf("private key leaked in:\n%s", out.String())
		}
	}
	if !strings.Contains(out.String(), id.PublicKeyString()) {
		t.Fatal("public key not printed; the Format method is not used")
	}
	id.Destroy()
	if !bytes.Equal(id.priv, make([]byte, ed25519.PrivateKeySize)) {
		t.Fatal("Destroy did not zero the key")
	}
}

func TestPublicKeyValidation(t *testing.T) {
	id, _ := GenerateIdentity()
	if _, err := ParsePublicKey(id.PublicKeyString()); err != nil {
		t.Fatal(err)
	}
	// RFC 8032 §7.1 TEST 1 public key.
	if _, err := ParsePublicKey(EncodePublicKey(hexKey("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))); err != nil {
		t.Fatalf("RFC 8032 test key rejected: %v", err)
	}
	for name, c := range map[string]struct {
		key    string
		errHas string
	}{
		// Points of order 1, 2 and 4, and the order-8 points from
		// libsodium's small-order blocklist (crypto_sign/ed25519/ref10/open.c).
		"identity (order 1)":    {"0100000000000000000000000000000000000000000000000000000000000000", "small order"},
		"(0,-1) (order 2)":      {"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "small order"},
		"(i,0) (order 4)":       {"0000000000000000000000000000000000000000000000000000000000000000", "small order"},
		"(-i,0) (order 4)":      {"0000000000000000000000000000000000000000000000000000000000000080", "small order"},
		"order 8 (a)":           {"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "small order"},
		"order 8 (b)":           {"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa", "small order"},
		"order 8 (c)":           {"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05", "small order"},
		"order 8 (d)":           {"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85", "small order"},
		"y = p (non-canonical)": {"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "y >= p"},
		"x = 0 with sign bit":   {"0100000000000000000000000000000000000000000000000000000000000080", "sign bit"},
		"not on curve":          {"0200000000000000000000000000000000000000000000000000000000000000", "not an Ed25519 curve point"},
	} {
		_, err := ParsePublicKey(EncodePublicKey(hexKey(c.key)))
		if err == nil || !strings.Contains(err.Error(), c.errHas) {
			t.Errorf("%s: %v, want %q", name, err, c.errHas)
		}
	}
}

func FuzzDecodeIdentity(f *testing.F) {
	id, _ := GenerateIdentity()
	good, _ := encodeIdentity(id)
	f.Add(good)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := decodeIdentity(data)
		if err != nil {
			return
		}
		out, err := encodeIdentity(id)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatal("identity decoding is not canonical")
		}
	})
}

// TestIdentityReadsOpenSSLKey checks that a key made by
// `openssl genpkey -algorithm ed25519` (committed as a fuzz seed) loads.
func TestIdentityReadsOpenSSLKey(t *testing.T) {
	data, err := os.ReadFile("testdata/fuzz/FuzzDecodeIdentity/key")
	if err != nil {
		t.Fatal(err)
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(string(data), "go test fuzz v1\n[]byte("), ")\n")
	pemText, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeIdentity([]byte(pemText)); err != nil {
		t.Fatalf("OpenSSL Ed25519 key rejected: %v", err)
	}
}
