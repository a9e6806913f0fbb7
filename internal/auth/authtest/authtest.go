// Package authtest is a software WebAuthn authenticator for Go tests: it
// makes the attestations (fmt "none") and assertions that a browser returns
// from navigator.credentials.create() and .get(), with an ES256 key, so
// that auth's Go tests run without a browser. It is a test double for the
// browser and the authenticator only; the passkey path is also tested end
// to end in real headless Chromium with a CDP virtual authenticator (see
// internal/node's browser test).
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator holds one passkey.
type Authenticator struct {
	Origin string
	RPID   string
	ID     []byte
	key    *ecdsa.PrivateKey
	count  uint32
}

// New makes an authenticator with a fresh passkey for rpID, used from
// origin.
func New(rpID, origin string) *Authenticator {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	return &Authenticator{Origin: origin, RPID: rpID, ID: id, key: k}
}

var b64 = base64.RawURLEncoding

func (a *Authenticator) clientData(typ string, challenge []byte) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": a.Origin, "crossOrigin": false})
	return b
}

func (a *Authenticator) authData(attested bool) []byte {
	rp := sha256.Sum256([]byte(a.RPID))
	flags := byte(0x01 | 0x04) // UP, UV
	if attested {
		flags |= 0x40
	}
	a.count++
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.ID)))
		out = append(out, a.ID...)
		out = append(out, a.COSEKey()...)
	}
	return out
}

// COSEKey returns the passkey's public key as a COSE_Key.
func (a *Authenticator) COSEKey() []byte {
	x, y := make([]byte, 32), make([]byte, 32)
	a.key.X.FillBytes(x)
	a.key.Y.FillBytes(y)
	b, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         1, XCoord: x, YCoord: y,
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Create returns the JSON of a navigator.credentials.create() response for
// challenge.
func (a *Authenticator) Create(challenge []byte) []byte {
	cd := a.clientData("webauthn.create", challenge)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": a.authData(true)})
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(a.ID), "rawId": b64.EncodeToString(a.ID), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att)},
	})
	return b
}

// Get returns the JSON of a navigator.credentials.get() response for
// challenge.
func (a *Authenticator) Get(challenge []byte) []byte {
	cd := a.clientData("webauthn.get", challenge)
	ad := a.authData(false)
	h := sha256.Sum256(cd)
	d := sha256.Sum256(append(append([]byte{}, ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, d[:])
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(a.ID), "rawId": b64.EncodeToString(a.ID), "type": "public-key",
		"response": map[string]string{"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad), "signature": b64.EncodeToString(sig)},
	})
	return b
}
