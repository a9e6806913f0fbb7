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

func seedRecords(f *testing.F) {
	k := mustKey(f, P256)
	e := mustKey(f, Ed25519)
	scope := (&ScopeCreateBody{Config: testConfig(f, k, e)}).ScopeID()
	cred := KeyCredential(e.Public())
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
	}
	for _, b := range bodies {
		r, err := Sign(b.k, b.b, k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Marshal())
		f.Add(append([]byte{0}, b.b...))
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
