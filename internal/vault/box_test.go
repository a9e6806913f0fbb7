package vault

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"golang.org/x/crypto/nacl/box"
)

func mustKey(t testing.TB) *PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpenRoundTrip(t *testing.T) {
	r := mustKey(t)
	for _, n := range []int{0, 1, 15, 16, 17, 63, 64, 65, 1000, 1 << 16} {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		s, err := SealTo(r.Public(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Content) != NonceSize+Overhead+n {
			t.Fatalf("len %d: content is %d bytes", n, len(s.Content))
		}
		got, err := s.Open(r)
		if err != nil {
			t.Fatalf("len %d: %v", n, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("len %d: round trip changed the message", n)
		}
		// The same box opens with x/crypto's own box.Open: the stored form is
		// plain crypto_box with the nonce in front.
		var nonce [24]byte
		copy(nonce[:], s.Content)
		pk, sk := [32]byte(s.EncryptorPublicKey), [32]byte(r.k)
		if got, ok := box.Open(nil, s.Content[24:], &nonce, &pk, &sk); !ok || !bytes.Equal(got, msg) {
			t.Fatalf("len %d: x/crypto box.Open disagrees", n)
		}
	}
}

func TestSealIsFreshEveryTime(t *testing.T) {
	r := mustKey(t)
	seenKey := map[PublicKey]bool{r.Public(): true}
	seenNonce := map[string]bool{}
	for i := 0; i < 50; i++ {
		s, err := SealTo(r.Public(), []byte("same message"))
		if err != nil {
			t.Fatal(err)
		}
		if seenKey[s.EncryptorPublicKey] {
			t.Fatal("encryptor key reused (or equal to the recipient's)")
		}
		seenKey[s.EncryptorPublicKey] = true
		n := string(s.Content[:NonceSize])
		if seenNonce[n] {
			t.Fatal("nonce reused")
		}
		seenNonce[n] = true
	}
}

// A box sealed to one key does not open with another, nor with the right
// key and a different encryptor key.
func TestOpenWrongKeys(t *testing.T) {
	r, other := mustKey(t), mustKey(t)
	s, err := SealTo(r.Public(), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(other); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong recipient: %v, want ErrOpen", err)
	}
	if _, err := Open(r, s.Content, other.Public()); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong encryptor: %v, want ErrOpen", err)
	}
	if _, err := Open(r, s.Content[:MinContentSize-1], s.EncryptorPublicKey); !errors.Is(err, ErrOpen) {
		t.Fatalf("short content: %v, want ErrOpen", err)
	}
	if _, err := Open(nil, s.Content, s.EncryptorPublicKey); err == nil {
		t.Fatal("nil key opened")
	}
	k := mustKey(t)
	k.Destroy()
	if _, err := Open(k, s.Content, s.EncryptorPublicKey); err == nil {
		t.Fatal("destroyed key opened")
	}
}

// Every single-bit change anywhere in the nonce, the box or the encryptor
// key makes Open fail.
func TestOpenTamper(t *testing.T) {
	r := mustKey(t)
	msg := []byte("the quick brown fox")
	s, err := SealTo(r.Public(), msg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Content {
		for bit := 0; bit < 8; bit++ {
			c := bytes.Clone(s.Content)
			c[i] ^= 1 << bit
			if pt, err := Open(r, c, s.EncryptorPublicKey); err == nil {
				t.Fatalf("content byte %d bit %d flipped: opened to %q", i, bit, pt)
			}
		}
	}
	for i := range s.EncryptorPublicKey {
		for bit := 0; bit < 8; bit++ {
			e := s.EncryptorPublicKey
			e[i] ^= 1 << bit
			// Bit 255 of a u-coordinate is ignored by X25519 (RFC 7748 §5),
			// so flipping it names the same point: the box must still open.
			if i == 31 && bit == 7 {
				if _, err := Open(r, s.Content, e); err != nil {
					t.Fatalf("top bit of encryptor key: %v", err)
				}
				continue
			}
			if _, err := Open(r, s.Content, e); err == nil {
				t.Fatalf("encryptor key byte %d bit %d flipped: opened", i, bit)
			}
		}
	}
	if got, err := Open(r, s.Content, s.EncryptorPublicKey); err != nil || !bytes.Equal(got, msg) {
		t.Fatal("original no longer opens")
	}
}

// RFC 7748 §6.1 X25519 keys, and the crypto_box_beforenm key for the same
// pair from NaCl's tests/box.c ("Cryptography in NaCl" §7, firstkey).
func TestRFC7748AndNaClFirstKey(t *testing.T) {
	alice, err := NewPrivateKey(unhex(t, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
	if err != nil {
		t.Fatal(err)
	}
	bob, err := NewPrivateKey(unhex(t, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(alice.pub[:]); got != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Fatalf("alice public %s", got)
	}
	if got := hex.EncodeToString(bob.pub[:]); got != "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" {
		t.Fatalf("bob public %s", got)
	}
	s1, err := x25519(alice, bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	s2, err := x25519(bob, alice.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(s1[:]); got != "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" || s1 != s2 {
		t.Fatalf("shared secret %s", got)
	}
	k, err := beforenm(alice, bob.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(k[:]); got != "1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389" {
		t.Fatalf("beforenm key %s", got)
	}
}

func readGzip(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tweetnacl-js box.random.js: crypto_box known answers, zero nonce.
func TestTweetNaClBoxKnownAnswers(t *testing.T) {
	raw := string(readGzip(t, "testdata/box.random.js.gz"))
	raw = strings.TrimSpace(raw)
	raw = strings.TrimPrefix(raw, "module.exports = ")
	raw = strings.TrimSuffix(raw, ";")
	var cases [][4]string
	if err := json.Unmarshal([]byte(raw), &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 256 {
		t.Fatalf("%d cases, want 256", len(cases))
	}
	dec := func(s string) []byte {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var nonce [NonceSize]byte
	for i, c := range cases {
		pk1, err := ParsePublicKey(dec(c[0]))
		if err != nil {
			t.Fatal(err)
		}
		sk2, err := NewPrivateKey(dec(c[1]))
		if err != nil {
			t.Fatal(err)
		}
		msg, want := dec(c[2]), append(make([]byte, NonceSize), dec(c[3])...)
		got, err := sealWith(sk2, &nonce, pk1, msg)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: sealed box differs", i)
		}
		pt, err := Open(sk2, want, pk1)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("case %d: open: %v", i, err)
		}
	}
}

type wycheproofX25519 struct {
	NumberOfTests int `json:"numberOfTests"`
	TestGroups    []struct {
		Tests []struct {
			TcID    int      `json:"tcId"`
			Flags   []string `json:"flags"`
			Public  string   `json:"public"`
			Private string   `json:"private"`
			Shared  string   `json:"shared"`
			Result  string   `json:"result"`
		} `json:"tests"`
	} `json:"testGroups"`
}

// Wycheproof X25519 through the function boxes use. Every valid case must
// give the expected shared secret. "acceptable" cases: those flagged
// ZeroSharedSecret (low-order public keys) must be refused with
// ErrLowOrder, as documented on Open and SealTo; the others (twist points,
// non-canonical u-coordinates) are computed as RFC 7748 says, and must match.
func TestWycheproofX25519(t *testing.T) {
	var f wycheproofX25519
	if err := json.Unmarshal(readGzip(t, "testdata/x25519_test.json.gz"), &f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			name := fmt.Sprintf("tc %d %v", tc.TcID, tc.Flags)
			sk, err := NewPrivateKey(unhex(t, tc.Private))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			pk, err := ParsePublicKey(unhex(t, tc.Public))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got, err := x25519(sk, pk)
			zero := false
			for _, fl := range tc.Flags {
				zero = zero || fl == "ZeroSharedSecret"
			}
			switch {
			case tc.Result == "invalid":
				t.Fatalf("%s: file has invalid cases; decide how to treat them", name)
			case zero:
				if !errors.Is(err, ErrLowOrder) {
					t.Fatalf("%s: %v, want ErrLowOrder", name, err)
				}
			default:
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if hex.EncodeToString(got[:]) != tc.Shared {
					t.Fatalf("%s: shared %x, want %s", name, got, tc.Shared)
				}
			}
		}
	}
	if n != f.NumberOfTests || n == 0 {
		t.Fatalf("ran %d of %d tests", n, f.NumberOfTests)
	}
}

func TestLowOrderKeysRefused(t *testing.T) {
	r := mustKey(t)
	var zero PublicKey // u = 0 has order 1
	if _, err := SealTo(zero, []byte("x")); !errors.Is(err, ErrLowOrder) {
		t.Fatalf("seal to low-order key: %v", err)
	}
	s, _ := SealTo(r.Public(), []byte("x"))
	if _, err := Open(r, s.Content, zero); !errors.Is(err, ErrLowOrder) {
		t.Fatalf("open with low-order encryptor: %v", err)
	}
}

func TestPublicKeyEncoding(t *testing.T) {
	k := mustKey(t)
	s := k.Public().String()
	p, err := ParsePublicKeyBase64(s)
	if err != nil || p != k.Public() {
		t.Fatalf("round trip: %v", err)
	}
	for _, bad := range []string{"", s[:43], s + "=", strings.TrimRight(s, "="), s[:10] + "\n" + s[10:], strings.Repeat("A", 44)[:43] + "B"} {
		if _, err := ParsePublicKeyBase64(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	if _, err := ParsePublicKey(make([]byte, 31)); err == nil {
		t.Error("accepted 31 bytes")
	}
}

func TestPrivateKeyNeverPrints(t *testing.T) {
	k, err := NewPrivateKey(bytes.Repeat([]byte{0xab}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ik, err := NewIssuerKey(bytes.Repeat([]byte{0xab}, 32))
	if err != nil {
		t.Fatal(err)
	}
	holder := struct {
		K  *PrivateKey
		I  *IssuerKey
		KV PrivateKey
		IV IssuerKey
	}{K: k, I: ik, KV: *k, IV: *ik}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", k)
		fmt.Fprintf(&out, verb+"\n", ik)
		fmt.Fprintf(&out, verb+"\n", holder)
	}
	fmt.Fprintln(&out, k, ik)
	j, _ := json.Marshal(holder)
	out.Write(j)
	slog.New(slog.NewJSONHandler(&out, nil)).Info("keys", "k", k, "i", ik)
	slog.New(slog.NewTextHandler(&out, nil)).Info("keys", "k", k, "i", ik)
	for _, leak := range []string{"abab", "ABAB", "171, 171", "171 171", "q6ur", "\\xab"} {
		if strings.Contains(out.String(), leak) {
			t.Fatalf("secret leaked (%q) in:\n%s", leak, out.String())
		}
	}
	if !strings.Contains(out.String(), "redacted") {
		t.Fatal("placeholder missing")
	}
}

func TestPrivateKeyEqual(t *testing.T) {
	a, _ := NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	b, _ := NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	c, _ := NewPrivateKey(bytes.Repeat([]byte{2}, 32))
	if !a.Equal(b) || a.Equal(c) || a.Equal(nil) {
		t.Fatal("Equal is wrong")
	}
	if !bytes.Equal(a.Bytes(), bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("Bytes is wrong")
	}
}
