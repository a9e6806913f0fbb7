package record

import (
	"bytes"
	"crypto/elliptic"
	"errors"
	"fmt"
	"math/big"
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
	a := &Approval{Scope: scope, Account: "bob", Method: "personal_sign", Expiry: 9}
	f.Add(append([]byte{1}, a.Marshal()...))
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
		if sel%8 == 0 {
			v, err = DecodeApproval(p)
		} else {
			var x any
			x, err = DecodeBody(Kind(sel%8), p)
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
