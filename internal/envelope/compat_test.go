package envelope

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	rsaOnce sync.Once
	rsaKeys [2]*rsa.PrivateKey
)

// testRSA returns two RSA-3072 keys, generated once per test binary.
func testRSA(t testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	rsaOnce.Do(func() {
		for i := range rsaKeys {
			k, err := rsa.GenerateKey(rand.Reader, 3072)
			if err != nil {
				panic(err)
			}
			rsaKeys[i] = k
		}
	})
	return rsaKeys[0], rsaKeys[1]
}

func newCompatOpener(t testing.TB, now *time.Time, keys ...*rsa.PrivateKey) (*CompatOpener, *MemoryNonceStore) {
	ns := &MemoryNonceStore{Now: func() time.Time { return *now }}
	o, err := NewCompatOpener(ns, 0, func() time.Time { return *now }, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return o, ns
}

func TestCompatRoundTrip(t *testing.T) {
	k, _ := testRSA(t)
	now := t0
	o, _ := newCompatOpener(t, &now, k)
	req := CompatRequest{Method: "createScope", Scope: "", Fields: map[string][]byte{
		"username": []byte("alice"), "payload": []byte(`{"a":1}`), "empty": {},
	}}
	hdr, body, pending, err := SealCompat(&k.PublicKey, req, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) != 4 {
		t.Fatalf("body has %d fields", len(body))
	}
	got, err := o.Open(context.Background(), hdr, body)
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "createScope" || got.Scope != "" || !maps.EqualFunc(got.Fields, req.Fields, bytes.Equal) {
		t.Fatalf("opened %+v", got)
	}
	if err := got.Check("createScope", "x"); !errors.Is(err, ErrBinding) {
		t.Fatalf("Check: %v", err)
	}
	resp, err := got.SealResponse(map[string][]byte{"result": []byte("ok")})
	if err != nil {
		t.Fatal(err)
	}
	// A response cannot be the request reflected back.
	if _, err := pending.OpenResponse(body); err == nil {
		t.Fatal("request body accepted as response")
	}
	fields, err := pending.OpenResponse(resp)
	if err != nil || string(fields["result"]) != "ok" || len(fields) != 1 {
		t.Fatalf("response: %v %v", fields, err)
	}
}

func TestCompatRejections(t *testing.T) {
	k, other := testRSA(t)
	now := t0
	o, ns := newCompatOpener(t, &now, k)
	seal := func(at time.Time, pub *rsa.PublicKey) (string, map[string]string) {
		h, b, _, err := SealCompat(pub, CompatRequest{Method: "m", Fields: map[string][]byte{"a": []byte("1"), "b": []byte("2")}}, at)
		if err != nil {
			t.Fatal(err)
		}
		return h, b
	}
	hdr, body := seal(now, &k.PublicKey)
	with := func(f func(b map[string]string)) map[string]string {
		c := maps.Clone(body)
		f(c)
		return c
	}
	flipLast := func(s string) string {
		raw, _ := b64.DecodeString(s)
		raw[len(raw)-1] ^= 1
		return b64.EncodeToString(raw)
	}
	otherHdr, otherBody := seal(now, &other.PublicKey)
	expHdr, expBody := seal(now.Add(-DefaultWindow-time.Millisecond), &k.PublicKey)
	_, body2 := seal(now, &k.PublicKey)
	var nodeB NodeID
	nodeB[5] = 1
	wrongNodeHdr, wrongNodeBody, _, err := SealCompat(&k.PublicKey, CompatRequest{Node: nodeB, Method: "m", Fields: map[string][]byte{"a": []byte("1")}}, now)
	if err != nil {
		t.Fatal(err)
	}
	// The version 1 meta field (no node id), sealed under the request's key.
	v1Hdr, v1Body := func() (string, map[string]string) {
		key := make([]byte, 32)
		wrapped, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte(b64.EncodeToString(key)), nil)
		aead, _ := newGCM(key)
		body, _ := sealFields(aead, map[string][]byte{"a": []byte("1")})
		meta := []byte("KMCQ\x01")
		meta = binary.BigEndian.AppendUint64(meta, uint64(now.UnixMilli()))
		meta = append(meta, make([]byte, 16)...)
		meta = append(meta, 1, 'm', 0)
		meta = append(meta, fieldDigest(body)...)
		body[MetaField], _ = sealField(aead, nil, meta)
		return b64.EncodeToString(wrapped), body
	}()
	cases := []struct {
		name string
		hdr  string
		body map[string]string
		want error
	}{
		{"tampered ciphertext", hdr, with(func(b map[string]string) { b["a"] = flipLast(b["a"]) }), ErrCiphertext},
		{"swapped fields", hdr, with(func(b map[string]string) { b["a"], b["b"] = b["b"], b["a"] }), ErrCiphertext},
		{"removed field", hdr, with(func(b map[string]string) { delete(b, "b") }), ErrCiphertext},
		{"field from another request", hdr, with(func(b map[string]string) { b["a"] = body2["a"] }), ErrCiphertext},
		{"tampered AAD (meta field)", hdr, with(func(b map[string]string) { b[MetaField] = flipLast(b[MetaField]) }), ErrHeader},
		{"wrong key", otherHdr, otherBody, ErrUnknownKey},
		{"tampered wrapped key", flipLast(hdr), body, ErrUnknownKey},
		{"expired", expHdr, expBody, ErrExpired},
		{"sealed for another node", wrongNodeHdr, wrongNodeBody, ErrWrongNode},
		{"version 1 meta (no node id)", v1Hdr, v1Body, ErrMalformed},
		{"no meta field", hdr, with(func(b map[string]string) { delete(b, MetaField) }), ErrMalformed},
		{"header not base64", hdr + "!", body, ErrMalformed},
		{"field not base64", hdr, with(func(b map[string]string) { b["a"] = "%%%" }), ErrMalformed},
	}
	for _, c := range cases {
		_, err := o.Open(context.Background(), c.hdr, c.body)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		for _, e := range []error{ErrMalformed, ErrUnknownKey, ErrHeader, ErrCiphertext, ErrExpired, ErrReplay, ErrWrongNode} {
			if e != c.want && errors.Is(err, e) {
				t.Errorf("%s: error also matches %v", c.name, e)
			}
		}
	}
	if ns.Len() != 0 {
		t.Fatalf("rejected requests recorded %d nonces", ns.Len())
	}
	if _, err := o.Open(context.Background(), hdr, body); err != nil {
		t.Fatalf("genuine request after rejections: %v", err)
	}
	if _, err := o.Open(context.Background(), hdr, body); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
}

type wycheproofFile struct {
	Algorithm  string
	TestGroups []struct {
		KeySize         json.RawMessage
		IvSize, TagSize int
		PrivateKeyPkcs8 string
		Sha, MgfSha     string
		Tests           []struct {
			TcID                              int
			Key, Iv, Aad, Msg, Ct, Tag, Label string
			Result                            string
			Flags                             []string
		}
	}
}

func loadWycheproof(t *testing.T, name string) wycheproofFile {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var f wycheproofFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestWycheproofAESGCM runs every AES-256-GCM, 96-bit IV, 128-bit tag case
// through newGCM, and the cases without AAD (the only kind the compatibility
// format makes) through sealField/openField, the functions that make and
// read body fields.
func TestWycheproofAESGCM(t *testing.T) {
	f := loadWycheproof(t, "aes_gcm_256_96_test.json")
	n, viaField := 0, 0
	for _, g := range f.TestGroups {
		for _, tc := range g.Tests {
			n++
			aead, err := newGCM(unhex(t, tc.Key))
			if err != nil {
				t.Fatal(err)
			}
			iv, msg, aad := unhex(t, tc.Iv), unhex(t, tc.Msg), unhex(t, tc.Aad)
			sealed := append(unhex(t, tc.Ct), unhex(t, tc.Tag)...)
			pt, err := aead.Open(nil, iv, sealed, aad)
			if (err == nil) != (tc.Result == "valid") || (err == nil && !bytes.Equal(pt, msg)) {
				t.Errorf("tc %d (%s %v): open err = %v", tc.TcID, tc.Result, tc.Flags, err)
			}
			if len(aad) != 0 {
				continue
			}
			viaField++
			field := b64.EncodeToString(append(bytes.Clone(iv), sealed...))
			pt, err = openField(aead, field)
			switch tc.Result {
			case "valid":
				if err != nil || !bytes.Equal(pt, msg) {
					t.Errorf("tc %d: openField: %v", tc.TcID, err)
				}
				s, err := sealField(aead, iv, msg)
				if err != nil || s != field {
					t.Errorf("tc %d: sealField = %s, want %s", tc.TcID, s, field)
				}
			default:
				if !errors.Is(err, ErrCiphertext) {
					t.Errorf("tc %d (%v): openField err = %v", tc.TcID, tc.Flags, err)
				}
			}
		}
	}
	if n != 66 || viaField == 0 {
		t.Fatalf("ran %d cases, %d through the field functions", n, viaField)
	}
}

// TestWycheproofRSAOAEP runs every RSA-OAEP SHA-256/MGF1-SHA-256 case, 3072-bit
// (the node's key size) and 2048-bit, through oaepDecrypt, the unwrap
// the compatibility opener uses. Invalid cases must all fail the same way
// (no padding oracle distinguishes them).
func TestWycheproofRSAOAEP(t *testing.T) {
	for _, name := range []string{"rsa_oaep_3072_sha256_mgf1sha256_test.json", "rsa_oaep_2048_sha256_mgf1sha256_test.json"} {
		f := loadWycheproof(t, name)
		n := 0
		var firstErr error
		for _, g := range f.TestGroups {
			if g.Sha != "SHA-256" || g.MgfSha != "SHA-256" {
				t.Fatalf("%s: group with %s/%s", name, g.Sha, g.MgfSha)
			}
			pk, err := x509.ParsePKCS8PrivateKey(unhex(t, g.PrivateKeyPkcs8))
			if err != nil {
				t.Fatal(err)
			}
			priv := pk.(*rsa.PrivateKey)
			for _, tc := range g.Tests {
				n++
				pt, err := oaepDecrypt(priv, unhex(t, tc.Ct), unhex(t, tc.Label))
				switch tc.Result {
				case "valid":
					if err != nil || !bytes.Equal(pt, unhex(t, tc.Msg)) {
						t.Errorf("%s tc %d: %v", name, tc.TcID, err)
					}
				case "invalid":
					if err == nil {
						t.Errorf("%s tc %d (%v): decrypted", name, tc.TcID, tc.Flags)
					} else if firstErr == nil {
						firstErr = err
					} else if err.Error() != firstErr.Error() {
						t.Errorf("%s tc %d: distinguishable error %q vs %q", name, tc.TcID, err, firstErr)
					}
				default:
					t.Errorf("%s tc %d: unexpected result %q", name, tc.TcID, tc.Result)
				}
			}
		}
		if n != 37 {
			t.Fatalf("%s: %d cases", name, n)
		}
	}
}

func FuzzCompatOpen(f *testing.F) {
	k, _ := testRSA(f)
	now := t0
	o, _ := newCompatOpener(f, &now, k)
	hdr, body, _, _ := SealCompat(&k.PublicKey, CompatRequest{Method: "m", Fields: map[string][]byte{"a": []byte("1")}}, now)
	f.Add(hdr, "a", body["a"], body[MetaField])
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, hdr, name, value, meta string) {
		b := map[string]string{name: value, MetaField: meta}
		// Must not panic; a fuzzed request must not open unless it is the seed.
		if _, err := o.Open(context.Background(), hdr, b); err == nil && (value != body["a"] || meta != body[MetaField]) {
			t.Fatal("opened a fuzzed request")
		}
	})
}

func TestCompatStateNeverPrints(t *testing.T) {
	k, _ := testRSA(t)
	now := t0
	o, _ := newCompatOpener(t, &now, k)
	hdr, body, pending, err := SealCompat(&k.PublicKey, CompatRequest{Method: "m", Fields: map[string][]byte{"a": {1}}}, now)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := o.Open(context.Background(), hdr, body)
	if err != nil {
		t.Fatal(err)
	}
	secret := pending.key()[:]
	dec := fmt.Sprint(secret[:8])
	for _, v := range []any{opened, *opened, pending, *pending, struct{ P *CompatPending }{pending}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%d", "%s", "%q"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, dec[1:len(dec)-1]) || strings.Contains(out, hex.EncodeToString(secret[:8])) ||
				strings.Contains(out, "gcm") || strings.Contains(out, "aes.") {
				t.Fatalf("%s prints key material: %s", verb, out)
			}
		}
	}
}
