package vault

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
)

// EIP-191 personal_sign hashes from ethers.js src.ts/_tests/test-hash.ts
// ("Test EIP-191 Personal Message Hash"), cross-checked with go-ethereum.
func TestPersonalSignHash(t *testing.T) {
	for _, c := range []struct {
		msg  []byte
		want string
	}{
		{[]byte("Hello World"), "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"},
		{[]byte{0x42, 0x43}, "0d3abc18ec299cf9b42ba439ac6f7e3e6ec9f5c048943704e30fc2d9c7981438"},
		{[]byte("0x4243"), "6d91b221f765224b256762dcba32d62209cf78e9bebb0a1b758ca26c76db3af4"},
	} {
		h := PersonalSignHash(c.msg)
		if hex.EncodeToString(h[:]) != c.want {
			t.Fatalf("%q: %x", c.msg, h)
		}
		if !bytes.Equal(accounts.TextHash(c.msg), h[:]) {
			t.Fatalf("%q: go-ethereum TextHash differs", c.msg)
		}
	}
}

func testDWG(t *testing.T) (*DelegatedGrant, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := crypto.HexToECDSA("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
	if err != nil {
		t.Fatal(err)
	}
	ik, err := NewIssuerKey(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	nb := time.Date(2026, 2, 11, 13, 35, 57, 0, time.UTC)
	return &DelegatedGrant{
		ID:                  "0f7c7a3e-6a4e-4b0e-9b1a-2c3d4e5f6a7b",
		Owner:               crypto.PubkeyToAddress(key.PublicKey).Hex(),
		Grantee:             "0xc00ffeec00ffeec00ffeec00ffeec00ffeec00ff",
		IssuerPublicKey:     ik.Public(),
		AccessGrantTimelock: nb.Add(30 * 24 * time.Hour),
		NotBefore:           nb,
		NotAfter:            nb.Add(24 * time.Hour),
	}, key
}

func TestDelegatedGrantMessage(t *testing.T) {
	d, _ := testDWG(t)
	m, err := d.Message()
	if err != nil {
		t.Fatal(err)
	}
	want := "operation: delegatedWriteGrant\n" +
		"owner: " + d.Owner + "\n" +
		"consumer: 0xc00ffeec00ffeec00ffeec00ffeec00ffeec00ff\n" +
		"issuer public key: " + d.IssuerPublicKey.String() + "\n" +
		"id: 0f7c7a3e-6a4e-4b0e-9b1a-2c3d4e5f6a7b\n" +
		"access grant timelock: 2026-03-13T13:35:57Z\n" +
		"not usable before: 2026-02-11T13:35:57Z\n" +
		"not usable after: 2026-02-12T13:35:57Z"
	if m != want {
		t.Fatalf("message:\n%s\nwant:\n%s", m, want)
	}
}

func TestDelegatedGrantSignVerify(t *testing.T) {
	d, key := testDWG(t)
	sig, err := SignDelegatedGrant(d, key)
	if err != nil {
		t.Fatal(err)
	}
	if sig[64] != 27 && sig[64] != 28 {
		t.Fatalf("v = %d", sig[64])
	}
	in := d.NotBefore.Add(time.Hour)
	if err := VerifyDelegatedGrant(d, sig, in); err != nil {
		t.Fatal(err)
	}
	// go-ethereum recovers the same owner from the personal_sign hash.
	h, _ := d.Hash()
	rsv := bytes.Clone(sig)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(h[:], rsv)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != d.Owner {
		t.Fatal("go-ethereum recovers another signer")
	}
	// v as 0/1 is accepted too.
	if err := VerifyDelegatedGrant(d, rsv, in); err != nil {
		t.Fatalf("v=0/1: %v", err)
	}
	// The owner string is part of the signed text, so the same address
	// written in another case is another message: it must not verify.
	dl := *d
	dl.Owner = strings.ToLower(d.Owner)
	if err := VerifyDelegatedGrant(&dl, sig, in); !errors.Is(err, ErrOwnerSignature) {
		t.Fatalf("lower-case owner: %v", err)
	}
	// Time window, both ends inclusive.
	for _, now := range []time.Time{d.NotBefore, d.NotAfter} {
		if err := VerifyDelegatedGrant(d, sig, now); err != nil {
			t.Fatalf("at %v: %v", now, err)
		}
	}
	for _, now := range []time.Time{d.NotBefore.Add(-time.Second), d.NotAfter.Add(time.Second)} {
		if err := VerifyDelegatedGrant(d, sig, now); !errors.Is(err, ErrNotUsable) {
			t.Fatalf("at %v: %v, want ErrNotUsable", now, err)
		}
	}
}

func TestDelegatedGrantTamper(t *testing.T) {
	d, key := testDWG(t)
	sig, _ := SignDelegatedGrant(d, key)
	in := d.NotBefore.Add(time.Hour)
	other, _ := crypto.GenerateKey()
	mut := []func(d *DelegatedGrant){
		func(d *DelegatedGrant) { d.Owner = crypto.PubkeyToAddress(other.PublicKey).Hex() },
		func(d *DelegatedGrant) { d.Grantee = "0xc00ffeec00ffeec00ffeec00ffeec00ffeec00fe" },
		func(d *DelegatedGrant) { d.IssuerPublicKey[0] ^= 1 },
		func(d *DelegatedGrant) { d.ID = "0f7c7a3e-6a4e-4b0e-9b1a-2c3d4e5f6a7c" },
		func(d *DelegatedGrant) { d.AccessGrantTimelock = d.AccessGrantTimelock.Add(-time.Second) },
		func(d *DelegatedGrant) { d.NotBefore = d.NotBefore.Add(-time.Hour) },
		func(d *DelegatedGrant) { d.NotAfter = d.NotAfter.Add(time.Hour) },
	}
	for i, m := range mut {
		dd := *d
		m(&dd)
		if err := VerifyDelegatedGrant(&dd, sig, in); !errors.Is(err, ErrOwnerSignature) {
			t.Fatalf("mutation %d: %v, want ErrOwnerSignature", i, err)
		}
	}
	for i := 0; i < 64; i++ {
		s := bytes.Clone(sig)
		s[i] ^= 0x01
		if err := VerifyDelegatedGrant(d, s, in); err == nil {
			t.Fatalf("signature byte %d flipped: verified", i)
		}
	}
	// The other signature of the same (r, s) pair, high s with v flipped,
	// is refused (EIP-2).
	n := crypto.S256().Params().N
	s := new(big.Int).SetBytes(sig[32:64])
	hs := new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))
	high := append(append(bytes.Clone(sig[:32]), hs...), 27+(1-(sig[64]-27)))
	if err := VerifyDelegatedGrant(d, high, in); !errors.Is(err, ErrOwnerSignature) {
		t.Fatalf("high-s: %v", err)
	}
	if err := VerifyDelegatedGrant(d, sig[:64], in); !errors.Is(err, ErrOwnerSignature) {
		t.Fatalf("short signature: %v", err)
	}
}

func TestDelegatedGrantFieldChecks(t *testing.T) {
	d, _ := testDWG(t)
	mut := map[string]func(d *DelegatedGrant){
		"newline in consumer": func(d *DelegatedGrant) { d.Grantee = "0xabc\nowner: 0x00" },
		"space in consumer":   func(d *DelegatedGrant) { d.Grantee = "a b" },
		"empty consumer":      func(d *DelegatedGrant) { d.Grantee = "" },
		"owner not address":   func(d *DelegatedGrant) { d.Owner = "alice.near" },
		"bad id":              func(d *DelegatedGrant) { d.ID = "1" },
		"window inverted":     func(d *DelegatedGrant) { d.NotAfter = d.NotBefore },
		"sub-second time":     func(d *DelegatedGrant) { d.NotBefore = d.NotBefore.Add(time.Millisecond) },
	}
	for name, m := range mut {
		dd := *d
		m(&dd)
		if _, err := dd.Message(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSignedDelegatedGrantEncodings(t *testing.T) {
	d, key := testDWG(t)
	sig, _ := SignDelegatedGrant(d, key)
	s := SignedDelegatedGrant{Grant: *d, Signature: [65]byte(sig)}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back SignedDelegatedGrant
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if err := back.Verify(d.NotBefore); err != nil {
		t.Fatalf("decoded grant: %v", err)
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("binary not canonical")
	}
	for _, bad := range [][]byte{append(bytes.Clone(b), 0), b[:len(b)-1]} {
		var x SignedDelegatedGrant
		if err := x.UnmarshalBinary(bad); err == nil {
			t.Errorf("accepted %d bytes", len(bad))
		}
	}
	j, err := json.Marshal(&s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(j, []byte(`"not_usable_before":"2026-02-11T13:35:57Z"`)) || !bytes.Contains(j, []byte(`"owner_wallet_identifier":"`+d.Owner)) {
		t.Fatalf("JSON fields: %s", j)
	}
	var jb SignedDelegatedGrant
	if err := json.Unmarshal(j, &jb); err != nil {
		t.Fatal(err)
	}
	if err := jb.Verify(d.NotBefore); err != nil {
		t.Fatalf("JSON-decoded grant: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(string(j), "13:35:57Z", "13:35:57.000Z", 1),
		strings.Replace(string(j), "13:35:57Z", "13:35:57+00:00", 1),
		strings.Replace(string(j), `"signature":"0x`, `"signature":"`, 1),
		strings.Replace(string(j), `"id"`, `"idx"`, 1),
		string(j) + "x",
	} {
		var x SignedDelegatedGrant
		if err := json.Unmarshal([]byte(bad), &x); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
