package record

import (
	"bytes"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
)

func testConfig(t testing.TB, keys ...*PrivateKey) ScopeConfig {
	c := ScopeConfig{RPID: "localhost", Origins: []string{"http://localhost:8080"}, Mode: ModeUser, SessionTTL: 3600}
	for _, k := range keys {
		c.DevKeys = append(c.DevKeys, k.Public())
	}
	return c
}

func mustKey(t testing.TB, alg Alg) *PrivateKey {
	k, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerify(t *testing.T) {
	for _, alg := range []Alg{P256, Ed25519} {
		t.Run(alg.String(), func(t *testing.T) {
			k := mustKey(t, alg)
			body := (&ScopeCreateBody{Nonce: [16]byte{1}, Config: testConfig(t, k)}).Marshal()
			r, err := Sign(ScopeCreate, body, k)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(r.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Marshal(), r.Marshal()) {
				t.Fatal("round trip changed the record")
			}
			if err := got.VerifySignature(); err != nil {
				t.Fatal(err)
			}
			// The same body under another kind, or a changed body, fails.
			other := *got
			other.Kind = ScopeUpdate
			if err := other.VerifySignature(); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("other kind: %v", err)
			}
			other = *got
			other.Body = append(bytes.Clone(got.Body[:len(got.Body)-1]), got.Body[len(got.Body)-1]^1)
			if err := other.VerifySignature(); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("changed body: %v", err)
			}
			// Key round trips through its string forms.
			pk, err := ParsePublicKey(k.Public().String())
			if err != nil || !pk.Equal(k.Public()) {
				t.Fatalf("ParsePublicKey: %v", err)
			}
			k2, err := ParsePrivateKey(k.MarshalPrivate())
			if err != nil || !k2.Public().Equal(k.Public()) {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			if s := fmt.Sprintf("%v %+v %#v %s", k, k, k, k); bytes.Contains([]byte(s), []byte(k.MarshalPrivate()[len(alg.String())+1:])) {
				t.Fatal("private key printed")
			}
		})
	}
}

func TestP256HighSRejected(t *testing.T) {
	k := mustKey(t, P256)
	msg := []byte("m")
	sig, _ := k.Sign(msg)
	if err := k.Public().Verify(msg, sig); err != nil {
		t.Fatal(err)
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	hi := bytes.Clone(sig)
	s.FillBytes(hi[32:])
	if err := k.Public().Verify(msg, hi); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("high-s twin verified: %v", err)
	}
}

func TestUnmarshalStrict(t *testing.T) {
	k := mustKey(t, Ed25519)
	r, _ := Sign(ScopeCreate, (&ScopeCreateBody{Config: testConfig(t, k)}).Marshal(), k)
	b := r.Marshal()
	for name, bad := range map[string][]byte{
		"empty":    nil,
		"trailing": append(bytes.Clone(b), 0),
		"version":  append([]byte{2}, b[1:]...),
		"kind":     append([]byte{1, 99}, b[2:]...),
		"short":    b[:len(b)-1],
	} {
		if _, err := Unmarshal(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A config that fails Check does not decode.
	c := testConfig(t, k)
	c.Mode = 9
	if _, err := DecodeScopeCreate((&ScopeCreateBody{Config: c}).Marshal()); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad mode: %v", err)
	}
}

// TestScopeFlags: a config without flags encodes as it did before the
// flags byte existed; AllowRawDigest round trips through a trailing flags
// byte that must be non-zero and name only known flags.
func TestScopeFlags(t *testing.T) {
	k := mustKey(t, Ed25519)
	c := testConfig(t, k)
	plain := (&ScopeCreateBody{Config: c}).Marshal()
	// The first encoding: nonce, rp id, origins, mode, ttl, keys; nothing after.
	var w Writer
	w.Fixed(make([]byte, 16))
	w.String(c.RPID)
	w.U32(1)
	w.String(c.Origins[0])
	w.U8(uint8(c.Mode))
	w.U32(c.SessionTTL)
	w.U32(1)
	k.Public().Encode(&w)
	if !bytes.Equal(plain, w.Bytes()) {
		t.Fatal("a config without flags changed its encoding")
	}
	got, err := DecodeScopeCreate(plain)
	if err != nil || got.Config.AllowRawDigest {
		t.Fatalf("old encoding: %+v, %v", got, err)
	}

	c.AllowRawDigest = true
	b := &ScopeCreateBody{Config: c}
	raw := b.Marshal()
	if !bytes.Equal(raw, append(bytes.Clone(plain), 1)) {
		t.Fatalf("flags byte: % x", raw[len(plain):])
	}
	if b.ScopeID() == (&ScopeCreateBody{Config: testConfig(t, k)}).ScopeID() {
		t.Fatal("the flag does not change the scope id")
	}
	got, err = DecodeScopeCreate(raw)
	if err != nil || !got.Config.AllowRawDigest || !bytes.Equal(got.Marshal(), raw) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	u := &ScopeUpdateBody{Scope: b.ScopeID(), Seq: 1, Config: c}
	gu, err := DecodeScopeUpdate(u.Marshal())
	if err != nil || !gu.Config.AllowRawDigest {
		t.Fatalf("update round trip: %+v, %v", gu, err)
	}
	gc, err := DecodeScopeConfig(c.Marshal())
	if err != nil || !gc.AllowRawDigest {
		t.Fatalf("config round trip: %+v, %v", gc, err)
	}

	for name, bad := range map[string][]byte{
		"zero flags":    append(bytes.Clone(plain), 0),
		"unknown flag":  append(bytes.Clone(plain), 2),
		"unknown high":  append(bytes.Clone(plain), 0x81),
		"two bytes":     append(bytes.Clone(raw), 1),
		"after trailer": append(bytes.Clone(raw), 0),
	} {
		if _, err := DecodeScopeCreate(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func seedRecords(f *testing.F) {
	k := mustKey(f, P256)
	e := mustKey(f, Ed25519)
	scope := (&ScopeCreateBody{Config: testConfig(f, k, e)}).ScopeID()
	cred := KeyCredential(e.Public())
	rawConfig := testConfig(f, k)
	rawConfig.AllowRawDigest = true
	bodies := []struct {
		k Kind
		b []byte
	}{
		{ScopeCreate, (&ScopeCreateBody{Config: testConfig(f, k, e)}).Marshal()},
		{ScopeUpdate, (&ScopeUpdateBody{Scope: scope, Seq: 1, Config: testConfig(f, e)}).Marshal()},
		{AccountRegister, (&AccountRegisterBody{Scope: scope, Account: "alice@example.com", Time: 1700000000, Credential: &cred}).Marshal()},
		{AccountRegister, (&AccountRegisterBody{Scope: scope, Account: "bob", Time: 1}).Marshal()},
		{CredentialAdd, (&CredentialAddBody{Scope: scope, Account: "bob", Credential: cred}).Marshal()},
		{CredentialRevoke, (&CredentialRevokeBody{Scope: scope, Account: "bob", CredentialID: cred.ID}).Marshal()},
		{SessionCreate, (&SessionCreateBody{Scope: scope, Account: "bob", Key: k.Public(), Issued: 1, Expiry: 5}).Marshal()},
		{SessionRevoke, (&SessionRevokeBody{Scope: scope, Account: "bob", Session: k.Public().ID()}).Marshal()},
		{AccountMode, (&AccountModeBody{Scope: scope, Account: "bob", Seq: 1, Mode: ModeDeveloper}).Marshal()},
		{ScopeCreate, (&ScopeCreateBody{Config: rawConfig}).Marshal()},
		{ScopeUpdate, (&ScopeUpdateBody{Scope: scope, Seq: 2, Config: rawConfig}).Marshal()},
	}
	for _, b := range bodies {
		r, err := Sign(b.k, b.b, k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Marshal())
		f.Add(append([]byte{0}, b.b...))
		f.Add(append([]byte{byte(b.k)}, b.b...)) // FuzzCanonicalPayload's selector for the kind
	}
	f.Add((&Record{Kind: AccountRegister, Body: bodies[3].b, Auth: Auth{Kind: AuthPasskeyCreate, WebAuthn: []byte(`{}`)}}).Marshal())
	// Quorum-signed update, a quorum config, a keyed passkey registration.
	qc := testConfig(f, k, e)
	qc.DevQuorum = 2
	qb := (&ScopeUpdateBody{Scope: scope, Seq: 3, Config: qc}).Marshal()
	if r, err := SignQuorum(ScopeUpdate, qb, k, e); err == nil {
		f.Add(r.Marshal())
	}
	f.Add(append([]byte{byte(ScopeUpdate)}, qb...))
	rk := k.Public()
	pk := Credential{ID: []byte{1, 2, 3}, Kind: CredPasskey, PublicKey: []byte{0xa5}}
	kb := (&AccountRegisterBody{Scope: scope, Account: "carol", Time: 2, Credential: &pk, RegistrationKey: &rk}).Marshal()
	f.Add((&Record{Kind: AccountRegister, Body: kb, Auth: Auth{Kind: AuthPasskeyCreateKeyed, WebAuthn: []byte(`{}`), Sig: make([]byte, 64)}}).Marshal())
	f.Add(append([]byte{byte(AccountRegister)}, kb...))
	a := &Approval{Scope: scope, Account: "bob", Method: "personal_sign", Expiry: 9}
	f.Add(append([]byte{0}, a.Marshal()...))
}

// FuzzRecord: any bytes that decode as a record re-encode to the same
// bytes, and decoding never panics.
func FuzzRecord(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(r.Marshal(), b) {
			t.Fatal("record is not canonical")
		}
		_ = r.VerifySignature()
		if body, err := DecodeBody(r.Kind, r.Body); err == nil {
			again, _ := MarshalBody(body)
			if !bytes.Equal(again, r.Body) {
				t.Fatalf("%s body is not canonical", r.Kind)
			}
		}
	})
}

// FuzzCanonicalPayload: every body type and the approval decode strictly
// and re-encode to the same bytes (one encoding per value).
func FuzzCanonicalPayload(f *testing.F) {
	seedRecords(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		sel, p := b[0], b[1:]
		var (
			v   interface{ Marshal() []byte }
			err error
		)
		if sel%9 == 0 {
			v, err = DecodeApproval(p)
		} else {
			var x any
			x, err = DecodeBody(Kind(sel%9), p)
			if err == nil {
				v = x.(interface{ Marshal() []byte })
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(v.Marshal(), p) {
			t.Fatalf("%T is not canonical", v)
		}
	})
}

// TestEd25519SmallOrderRefused: the identity key verifies the signature
// "R = identity, S = 0" for every message under crypto/ed25519 (RFC 8032
// does not exclude it); such keys, and every small-order or non-canonical
// encoding, are refused when decoded, parsed or used.
func TestEd25519SmallOrderRefused(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1
	forged := append(bytes.Clone(identity), make([]byte, 32)...)
	if !ed25519.Verify(ed25519.PublicKey(identity), []byte("any message"), forged) {
		t.Fatal("the premise: crypto/ed25519 accepts the identity key's forgery")
	}
	k := PublicKey{Alg: Ed25519, Key: identity}
	if err := k.Verify([]byte("any message"), forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("identity key verified a forgery: %v", err)
	}
	le := func(hexBE string) []byte { // a field element, little-endian
		n, _ := new(big.Int).SetString(hexBE, 10)
		b := make([]byte, 32)
		n.FillBytes(b)
		slices.Reverse(b)
		return b
	}
	p := "57896044618658097711785492504343953926634992332820282019728792003956564819949"
	small := map[string][]byte{
		"identity":     identity,
		"order 2":      le("57896044618658097711785492504343953926634992332820282019728792003956564819948"),
		"order 4":      make([]byte, 32),
		"order 8":      le("2707385501144840649318225287225658788936804267575313519463743609750303402022"),
		"order 8, −y":  le("55188659117513257062467267217118295137698188065244968500265048394206261417927"),
		"y = p":        le(p),
		"y = p + 1":    le("57896044618658097711785492504343953926634992332820282019728792003956564819950"),
		"identity, −x": append(bytes.Clone(identity[:31]), 0x80),
		"order 8, sign": func() []byte {
			b := le("2707385501144840649318225287225658788936804267575313519463743609750303402022")
			b[31] |= 0x80
			return b
		}(),
	}
	for name, key := range small {
		if err := (PublicKey{Alg: Ed25519, Key: key}).Check(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Check: %v", name, err)
		}
		if _, err := ParsePublicKey("ed25519:" + base64.RawURLEncoding.EncodeToString(key)); err == nil {
			t.Errorf("%s: parsed", name)
		}
		var w Writer
		(PublicKey{Alg: Ed25519, Key: key}).Encode(&w)
		if _, err := DecodeCredential(KeyCredentialBytes(w.Bytes())); err == nil {
			t.Errorf("%s: decoded in a credential", name)
		}
	}
	if err := mustKey(t, Ed25519).Public().Check(); err != nil {
		t.Fatalf("a real key: %v", err)
	}
}

// KeyCredentialBytes encodes a CredKey credential for an encoded key,
// with the id derived from it (bypassing KeyCredential's checks).
func KeyCredentialBytes(key []byte) []byte {
	id := sha256.Sum256(key)
	var w Writer
	w.Var(id[:])
	w.U8(uint8(CredKey))
	w.Var(key)
	return w.Bytes()
}

// TestKeyCredentialID: a plain-key credential's id is its key's id; one
// with any other id does not decode (it would let one key be registered
// twice, or dodge a revocation of its id).
func TestKeyCredentialID(t *testing.T) {
	k := mustKey(t, P256).Public()
	c := KeyCredential(k)
	if _, err := DecodeCredential(c.Marshal()); err != nil {
		t.Fatal(err)
	}
	bad := c
	bad.ID = bytes.Repeat([]byte{7}, 32)
	if _, err := DecodeCredential(bad.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("credential with a chosen id: %v", err)
	}
	b := &CredentialAddBody{Scope: "0123456789abcdef0123456789abcdef", Account: "a", Credential: bad}
	if _, err := DecodeCredentialAdd(b.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("credential.add with a chosen id: %v", err)
	}
}

// TestDevQuorumEncoding: a config without a quorum encodes as before; a
// quorum follows the flags byte, must be 1..k, and zero is refused (the
// default spelt twice).
func TestDevQuorumEncoding(t *testing.T) {
	k1, k2, k3 := mustKey(t, P256), mustKey(t, Ed25519), mustKey(t, P256)
	c := testConfig(t, k1, k2, k3)
	plain := c.Marshal()
	if c.Quorum() != 2 || DefaultDevQuorum(1) != 1 || DefaultDevQuorum(2) != 2 || DefaultDevQuorum(4) != 3 {
		t.Fatal("default quorum")
	}
	c.DevQuorum = 3
	enc := c.Marshal()
	if !bytes.Equal(enc, append(bytes.Clone(plain), flagDevQuorum, 3)) {
		t.Fatalf("quorum encoding: % x", enc[len(plain):])
	}
	got, err := DecodeScopeConfig(enc)
	if err != nil || got.DevQuorum != 3 || got.Quorum() != 3 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	c.AllowRawDigest = true
	got, err = DecodeScopeConfig(c.Marshal())
	if err != nil || got.DevQuorum != 3 || !got.AllowRawDigest || !bytes.Equal(got.Marshal(), c.Marshal()) {
		t.Fatalf("both flags: %+v %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"zero quorum":    append(bytes.Clone(plain), flagDevQuorum, 0),
		"quorum above k": append(bytes.Clone(plain), flagDevQuorum, 4),
		"missing quorum": append(bytes.Clone(plain), flagDevQuorum),
		"trailing byte":  append(bytes.Clone(plain), flagDevQuorum, 2, 0),
	} {
		if _, err := DecodeScopeConfig(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSignQuorum: a record signed by several keys has one encoding (signers
// in ascending order, no repeats, at least two), and every signature must
// verify.
func TestSignQuorum(t *testing.T) {
	k1, k2 := mustKey(t, P256), mustKey(t, Ed25519)
	body := (&ScopeCreateBody{Config: testConfig(t, k1, k2)}).Marshal()
	r, err := SignQuorum(ScopeCreate, body, k2, k1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(r.Marshal())
	if err != nil || got.VerifySignature() != nil || len(got.Signers()) != 2 {
		t.Fatalf("round trip: %v", err)
	}
	swapped := *r
	swapped.Auth.Sigs = []Signature{r.Auth.Sigs[1], r.Auth.Sigs[0]}
	if _, err := Unmarshal(swapped.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("signers out of order: %v", err)
	}
	twice := *r
	twice.Auth.Sigs = []Signature{r.Auth.Sigs[0], r.Auth.Sigs[0]}
	if _, err := Unmarshal(twice.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a signer twice: %v", err)
	}
	one := *r
	one.Auth.Sigs = r.Auth.Sigs[:1]
	if _, err := Unmarshal(one.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("one signature as a list: %v", err)
	}
	if _, err := SignQuorum(ScopeCreate, body, k1, k1); err == nil {
		t.Fatal("the same key twice")
	}
	bad := *got
	bad.Auth.Sigs = slices.Clone(got.Auth.Sigs)
	bad.Auth.Sigs[1].Sig = bytes.Clone(bad.Auth.Sigs[0].Sig)
	if bad.VerifySignature() == nil {
		t.Fatal("a bad second signature verified")
	}
}

// TestRegistrationKeyEncoding: the registration key ends the body when
// present; a body without it encodes as before; Payload drops only the
// credential.
func TestRegistrationKeyEncoding(t *testing.T) {
	k := mustKey(t, P256).Public()
	b := &AccountRegisterBody{Scope: "0123456789abcdef0123456789abcdef", Account: "alice", Time: 5}
	plain := b.Marshal()
	b.RegistrationKey = &k
	withKey := b.Marshal()
	var w Writer
	w.U8(1)
	k.Encode(&w)
	if !bytes.Equal(withKey, append(bytes.Clone(plain), w.Bytes()...)) {
		t.Fatal("registration key encoding")
	}
	cred := Credential{ID: []byte{1, 2}, Kind: CredPasskey, PublicKey: []byte{3}}
	b.Credential = &cred
	got, err := DecodeAccountRegister(b.Marshal())
	if err != nil || got.RegistrationKey == nil || !got.RegistrationKey.Equal(k) || got.Credential == nil || !bytes.Equal(got.Payload(), withKey) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"zero marker":  append(bytes.Clone(plain), 0),
		"two marker":   append(append(bytes.Clone(plain), 2), w.Bytes()[1:]...),
		"key trailing": append(bytes.Clone(withKey), 0),
	} {
		if _, err := DecodeAccountRegister(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
