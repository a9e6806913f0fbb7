package channel

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// pair runs the handshake and returns the inviter's and the joiner's
// channels.
func pair(t testing.TB) (inviter, joiner *Channel, inv *Invite) {
	t.Helper()
	inv, err := NewInvite(nil)
	if err != nil {
		t.Fatal(err)
	}
	read, err := ParseInvite(inv.Text())
	if err != nil {
		t.Fatal(err)
	}
	j, hello, err := read.Join(nil)
	if err != nil {
		t.Fatal(err)
	}
	ic, welcome, err := inv.Accept(hello, nil)
	if err != nil {
		t.Fatal(err)
	}
	jc, err := j.Finish(welcome)
	if err != nil {
		t.Fatal(err)
	}
	return ic, jc, inv
}

func seal(t testing.TB, c *Channel, s string) []byte {
	t.Helper()
	m, err := c.Seal([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustOpen(t testing.TB, c *Channel, m []byte, want string) {
	t.Helper()
	pt, rotated, err := c.Open(m)
	if err != nil {
		t.Fatalf("%s opening %q: %v", c.Role(), want, err)
	}
	if rotated || string(pt) != want {
		t.Fatalf("%s opened %q (rotated %v), want %q", c.Role(), pt, rotated, want)
	}
}

func TestRoundTrip(t *testing.T) {
	ic, jc, inv := pair(t)
	if ic.Mailbox() != jc.Mailbox() || ic.Mailbox() != inv.Mailbox() {
		t.Fatal("the two sides derived different mailboxes")
	}
	if ic.Role() != Inviter || jc.Role() != Joiner {
		t.Fatalf("roles %v, %v", ic.Role(), jc.Role())
	}
	// Interleaved, and several in flight each way.
	for i := range 20 {
		var toJ, toI [][]byte
		for k := range i%3 + 1 {
			toJ = append(toJ, seal(t, ic, fmt.Sprintf("credential %d.%d", i, k)))
			toI = append(toI, seal(t, jc, fmt.Sprintf("request %d.%d", i, k)))
		}
		for k, m := range toJ {
			mustOpen(t, jc, m, fmt.Sprintf("credential %d.%d", i, k))
		}
		for k, m := range toI {
			mustOpen(t, ic, m, fmt.Sprintf("request %d.%d", i, k))
		}
	}
	// The empty message and the largest.
	mustOpen(t, jc, seal(t, ic, ""), "")
	big := strings.Repeat("x", MaxPlaintext)
	m := seal(t, ic, big)
	if len(m) != MaxMessage {
		t.Fatalf("largest message %d bytes, MaxMessage %d", len(m), MaxMessage)
	}
	mustOpen(t, jc, m, big)
	if _, err := ic.Seal(make([]byte, MaxPlaintext+1)); err == nil {
		t.Fatal("sealed more than MaxPlaintext")
	}
}

// TestRotation: a rotation is delivered in order like a message; the
// rotating side's old key still opens what the peer sealed before it read
// the rotation, and is dropped once the peer answers under the new key.
func TestRotation(t *testing.T) {
	ic, jc, _ := pair(t)
	oldPK := ic.own.raw
	rot, err := ic.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	after := seal(t, ic, "after the rotation")
	inFlight := seal(t, jc, "sealed to the inviter's old key") // the joiner has not read the rotation yet
	if _, rotated, err := jc.Open(rot); err != nil || !rotated {
		t.Fatalf("rotation: rotated %v, %v", rotated, err)
	}
	mustOpen(t, jc, after, "after the rotation")
	mustOpen(t, ic, inFlight, "sealed to the inviter's old key")
	if len(ic.old) != 1 {
		t.Fatalf("%d old keys kept, want 1 until the joiner answers under the new key", len(ic.old))
	}
	mustOpen(t, ic, seal(t, jc, "under the new key"), "under the new key")
	if len(ic.old) != 0 {
		t.Fatalf("%d old keys kept after the joiner answered under the new key", len(ic.old))
	}
	// A message sealed to a key the inviter has dropped no longer opens.
	stale := *jc
	stale.peer, _ = scheme.UnmarshalBinaryPublicKey(oldPK[:])
	if _, _, err := ic.Open(seal(t, &stale, "to the dropped key")); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("a message to a dropped key: %v", err)
	}
	// Both sides rotate at once, twice.
	for range 2 {
		ri, err := ic.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		rj, err := jc.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if _, rotated, err := jc.Open(ri); err != nil || !rotated {
			t.Fatalf("joiner reading the inviter's rotation: %v", err)
		}
		if _, rotated, err := ic.Open(rj); err != nil || !rotated {
			t.Fatalf("inviter reading the joiner's rotation: %v", err)
		}
	}
	mustOpen(t, jc, seal(t, ic, "after both rotated"), "after both rotated")
	mustOpen(t, ic, seal(t, jc, "and back"), "and back")
	// Rotations that wait for an answer are bounded.
	for range maxUnacked {
		if _, err := ic.Rotate(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ic.Rotate(); err == nil {
		t.Fatalf("rotated %d times without an answer", maxUnacked+1)
	}
}

// TestMaliciousRelay plays the relay: it sees every byte both parties
// send, and the public keys in clear, but not the invite. Whatever it
// alters, injects, replays, reorders or reflects is refused, and the
// refusal changes nothing: the real message still goes through.
func TestMaliciousRelay(t *testing.T) {
	t.Run("handshake", func(t *testing.T) {
		inv, _ := NewInvite(nil)
		read, _ := ParseInvite(inv.Text())
		j, hello, err := read.Join(nil)
		if err != nil {
			t.Fatal(err)
		}
		// Every altered byte of the hello.
		for i := range hello {
			bad := bytes.Clone(hello)
			bad[i] ^= 0x01
			if _, _, err := inv.Accept(bad, nil); err == nil {
				t.Fatalf("accepted a hello altered at byte %d", i)
			}
		}
		// The relay's own key in place of the joiner's (a man in the
		// middle): it cannot make the MAC without the invite.
		relay, _ := newKeyPair(randReader())
		mitm := append([]byte{version, typeHello}, relay.raw[:]...)
		mitm = append(mitm, hello[2+keyLen:]...)
		if _, _, err := inv.Accept(mitm, nil); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("a substituted joiner key: %v", err)
		}
		// A hello made for another invite.
		other, _ := NewInvite(nil)
		otherRead, _ := ParseInvite(other.Text())
		_, otherHello, _ := otherRead.Join(nil)
		if _, _, err := inv.Accept(otherHello, nil); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("another invite's hello: %v", err)
		}
		// Short, long, wrong type.
		for _, bad := range [][]byte{nil, hello[:len(hello)-1], append(bytes.Clone(hello), 0)} {
			if _, _, err := inv.Accept(bad, nil); !errors.Is(err, ErrMalformed) {
				t.Fatalf("a %d-byte hello: %v", len(bad), err)
			}
		}
		// None of that spent the invite: the real hello is accepted.
		ic, welcome, err := inv.Accept(hello, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Replayed later, the hello finds the invite spent.
		if _, _, err := inv.Accept(hello, nil); !errors.Is(err, ErrInviteSpent) {
			t.Fatalf("a replayed hello: %v", err)
		}
		if inv.Text() != "" {
			t.Fatal("a spent invite still shows its secret")
		}
		for i := range welcome {
			bad := bytes.Clone(welcome)
			bad[i] ^= 0x80
			if _, err := j.Finish(bad); err == nil {
				t.Fatalf("finished with a welcome altered at byte %d", i)
			}
		}
		mitmW := append([]byte{version, typeWelcome}, relay.raw[:]...)
		mitmW = append(mitmW, welcome[2+keyLen:]...)
		if _, err := j.Finish(mitmW); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("a substituted inviter key: %v", err)
		}
		// The hello sent back as a welcome (reflection) is refused.
		refl := bytes.Clone(hello)
		refl[1] = typeWelcome
		if _, err := j.Finish(refl); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("the joiner's own hello as a welcome: %v", err)
		}
		jc, err := j.Finish(welcome)
		if err != nil {
			t.Fatal(err)
		}
		mustOpen(t, jc, seal(t, ic, "through"), "through")
	})

	t.Run("messages", func(t *testing.T) {
		ic, jc, _ := pair(t)
		m0 := seal(t, ic, "first")
		for i := range m0 {
			bad := bytes.Clone(m0)
			bad[i] ^= 0x01
			if _, _, err := jc.Open(bad); err == nil {
				t.Fatalf("opened a message altered at byte %d", i)
			}
		}
		// Its type changed from data to rotation: bound by the AAD.
		retyped := bytes.Clone(m0)
		retyped[1] = typeRotate
		if _, _, err := jc.Open(retyped); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("a retyped message: %v", err)
		}
		// Reflected: the inviter's message back to the inviter.
		if _, _, err := ic.Open(m0); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("a reflected message: %v", err)
		}
		// Injected: the relay knows both public keys; it seals in base
		// mode to the joiner, and in AuthPSK mode from its own key with a
		// guessed PSK. Neither opens.
		for name, inject := range map[string]func() []byte{
			"base mode": func() []byte {
				s, _ := suite.NewSender(jc.own.pk, jc.info())
				enc, sealer, _ := s.Setup(randReader())
				return forge(t, jc, 0, enc, sealer.Seal)
			},
			"auth from the relay's key": func() []byte {
				relay, _ := newKeyPair(randReader())
				enc, ct, err := sealAuthPSK(randReader(), jc.own.pk, relay.sk, make([]byte, 32), jc.k.mailbox[:], jc.info(), jc.aad(Inviter, header(typeData, 0)), []byte("injected"))
				if err != nil {
					t.Fatal(err)
				}
				return append(append(header(typeData, 0), enc...), ct...)
			},
		} {
			if _, _, err := jc.Open(inject()); !errors.Is(err, ErrNotAuthentic) {
				t.Fatalf("%s injection: %v", name, err)
			}
		}
		// Another channel's message, in the right place.
		oi, _, _ := pair(t)
		if _, _, err := jc.Open(seal(t, oi, "elsewhere")); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("another channel's message: %v", err)
		}
		mustOpen(t, jc, m0, "first")
		// Replayed.
		var oe *OrderError
		if _, _, err := jc.Open(m0); !errors.As(err, &oe) || oe.Want != 1 || oe.Got != 0 {
			t.Fatalf("a replayed message: %v", err)
		}
		// Dropped or held back: message 2 before 1 names the gap; then 1
		// and 2 open in order.
		m1, m2 := seal(t, ic, "second"), seal(t, ic, "third")
		if _, _, err := jc.Open(m2); !errors.As(err, &oe) || oe.Want != 1 || oe.Got != 2 {
			t.Fatalf("a message after a gap: %v", err)
		} else if !strings.Contains(err.Error(), "messages 1 to 1 are missing") {
			t.Fatalf("gap error %q", err)
		}
		mustOpen(t, jc, m1, "second")
		mustOpen(t, jc, m2, "third")
		// Malformed sizes.
		for _, bad := range [][]byte{nil, m1[:headerLen+encLen+tagLen-1], make([]byte, MaxMessage+1)} {
			if _, _, err := jc.Open(bad); !errors.Is(err, ErrMalformed) {
				t.Fatalf("a %d-byte message: %v", len(bad), err)
			}
		}
	})
}

func randReader() io.Reader { return rand.Reader }

func header(typ byte, seq uint64) []byte {
	h := []byte{version, typ, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(h[2:], seq)
	return h
}

// forge builds a data message at seq with the given encapsulation and an
// AEAD seal under the right associated data.
func forge(t *testing.T, to *Channel, seq uint64, enc []byte, seal func(pt, aad []byte) ([]byte, error)) []byte {
	t.Helper()
	h := header(typeData, seq)
	ct, err := seal([]byte("injected"), to.aad(to.role.peer(), h))
	if err != nil {
		t.Fatal(err)
	}
	return append(append(h, enc...), ct...)
}

// TestMaliciousJoiner: a party that knows the invite but sends a low-order
// public key (which would make the DH output all zeros) is refused.
func TestMaliciousJoiner(t *testing.T) {
	inv, _ := NewInvite(nil)
	zero := make([]byte, keyLen) // the point of order 1 (u = 0)
	one := make([]byte, keyLen)  // u = 1: order 4
	one[0] = 1
	for _, key := range [][]byte{zero, one} {
		hello := append([]byte{version, typeHello}, key...)
		hello = append(hello, handshakeMAC(&inv.k, Joiner, key)...)
		if _, _, err := inv.Accept(hello, nil); !errors.Is(err, ErrMalformed) {
			t.Fatalf("a low-order joiner key %x: %v", key[:1], err)
		}
	}
	if inv.Text() == "" {
		t.Fatal("a refused hello spent the invite")
	}
}

func TestInviteText(t *testing.T) {
	inv, err := NewInvite(nil)
	if err != nil {
		t.Fatal(err)
	}
	text := inv.Text()
	if !strings.HasPrefix(text, "kmrelay1:") || len(text) != len("kmrelay1:")+43 {
		t.Fatalf("invite text %d bytes", len(text))
	}
	read, err := ParseInvite(text)
	if err != nil {
		t.Fatal(err)
	}
	if read.Mailbox() != inv.Mailbox() {
		t.Fatal("the parsed invite names another mailbox")
	}
	if read.Text() != "" {
		t.Fatal("a joiner's invite shows a secret")
	}
	if _, _, err := read.Accept(nil, nil); err == nil {
		t.Fatal("a joiner's invite accepted a hello")
	}
	if _, _, err := inv.Join(nil); err == nil {
		t.Fatal("an inviter's invite joined")
	}
	if _, _, err := read.Join(nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := read.Join(nil); !errors.Is(err, ErrInviteSpent) {
		t.Fatalf("a second join: %v", err)
	}
	body := strings.TrimPrefix(text, "kmrelay1:")
	for i, bad := range []string{
		"", body, "kmrelay2:" + body, "kmrelay1:" + body + "=", "kmrelay1:" + body[:42],
		"kmrelay1:" + body + "A", "kmrelay1:" + strings.Replace(body, body[:1], "+", 1),
		" kmrelay1:" + body, "kmrelay1:" + body + "\n",
	} {
		if _, err := ParseInvite(bad); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad invite text %d: %v", i, err) // not the text: it holds a secret
		}
	}
}

// TestNothingSecretPrints: every type holding a secret prints only its
// role and mailbox, with any verb.
func TestNothingSecretPrints(t *testing.T) {
	inv, _ := NewInvite(nil)
	secret := inv.secret
	read, _ := ParseInvite(inv.Text())
	j, hello, _ := read.Join(nil)
	ic, welcome, _ := inv.Accept(hello, nil)
	jc, _ := j.Finish(welcome)
	var secrets [][]byte
	secrets = append(secrets, secret[:], ic.k.mac[:], ic.k.psk[:])
	for _, c := range []*Channel{ic, jc} {
		b, _ := c.own.sk.MarshalBinary()
		secrets = append(secrets, b)
	}
	var all strings.Builder
	for i, v := range []any{inv, read, j, ic, jc, *ic, *inv, *j} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
			out := fmt.Sprintf(verb, v)
			all.WriteString(out)
			for k, s := range secrets {
				for _, enc := range []string{hex.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s), fmt.Sprint(s), string(s)} {
					if strings.Contains(out, enc) {
						// Not the output itself: it holds the secret.
						t.Fatalf("value %d printed with %s shows secret %d", i, verb, k)
					}
				}
			}
		}
	}
	if !strings.Contains(all.String(), inv.Mailbox().String()) {
		t.Fatal("the mailbox is not printed")
	}
}

// TestRFC9180AuthPSK checks the HPKE step against the RFC 9180 appendix
// vector for this package's suite (mode_auth_psk, DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305; testdata/SOURCES.md).
func TestRFC9180AuthPSK(t *testing.T) {
	raw, err := os.ReadFile("testdata/rfc9180-authpsk-x25519-chacha.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Mode        int    `json:"mode"`
		KEMID       int    `json:"kem_id"`
		KDFID       int    `json:"kdf_id"`
		AEADID      int    `json:"aead_id"`
		Info        string `json:"info"`
		IkmE        string `json:"ikmE"`
		SkRm        string `json:"skRm"`
		SkSm        string `json:"skSm"`
		Psk         string `json:"psk"`
		PskID       string `json:"psk_id"`
		PkRm        string `json:"pkRm"`
		PkSm        string `json:"pkSm"`
		Enc         string `json:"enc"`
		Encryptions []struct {
			Aad string `json:"aad"`
			Ct  string `json:"ct"`
			Pt  string `json:"pt"`
		} `json:"encryptions"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("%d vectors", len(vs))
	}
	v := vs[0]
	if v.Mode != 3 || v.KEMID != 0x20 || v.KDFID != 1 || v.AEADID != 3 {
		t.Fatalf("vector for mode %d suite %#x/%d/%d", v.Mode, v.KEMID, v.KDFID, v.AEADID)
	}
	if kemID, kdfID, aeadID := suite.Params(); int(kemID) != v.KEMID || int(kdfID) != v.KDFID || int(aeadID) != v.AEADID {
		t.Fatal("the package's suite is not the vector's")
	}
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pkR, err := scheme.UnmarshalBinaryPublicKey(h(v.PkRm))
	if err != nil {
		t.Fatal(err)
	}
	skS, err := scheme.UnmarshalBinaryPrivateKey(h(v.SkSm))
	if err != nil {
		t.Fatal(err)
	}
	skR, _ := scheme.UnmarshalBinaryPrivateKey(h(v.SkRm))
	pkS, _ := scheme.UnmarshalBinaryPublicKey(h(v.PkSm))
	e := v.Encryptions[0] // single-shot: sequence number 0
	enc, ct, err := sealAuthPSK(bytes.NewReader(h(v.IkmE)), pkR, skS, h(v.Psk), h(v.PskID), h(v.Info), h(e.Aad), h(e.Pt))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, h(v.Enc)) || !bytes.Equal(ct, h(e.Ct)) {
		t.Fatalf("enc %x ct %x, want %s %s", enc, ct, v.Enc, e.Ct)
	}
	pt, err := openAuthPSK(skR, pkS, h(v.Psk), h(v.PskID), h(v.Info), h(e.Aad), enc, ct)
	if err != nil || !bytes.Equal(pt, h(e.Pt)) {
		t.Fatalf("open: %x, %v", pt, err)
	}
}
