package channel

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"golang.org/x/crypto/curve25519"
)

// Role is a party's side of a channel.
type Role uint8

const (
	// Inviter made the invite and shows it out of band.
	Inviter Role = 1
	// Joiner read the invite and starts the handshake.
	Joiner Role = 2
)

func (r Role) String() string {
	switch r {
	case Inviter:
		return "inviter"
	case Joiner:
		return "joiner"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

func (r Role) peer() Role { return 3 - r }

// Message types, the second byte of every message.
const (
	typeHello   = 1
	typeWelcome = 2
	typeData    = 3
	typeRotate  = 4
)

const (
	version     = 1
	label       = "keymesh channel v1"
	textPrefix  = "kmrelay1:"
	secretLen   = 32
	keyLen      = 32 // an X25519 public key
	macLen      = sha256.Size
	handshakeLn = 2 + keyLen + macLen
	seqLen      = 8
	encLen      = 32 // DHKEM(X25519) encapsulated key
	tagLen      = 16 // ChaCha20-Poly1305
	headerLen   = 2 + seqLen

	// MaxPlaintext bounds one message's plaintext.
	MaxPlaintext = 512 << 10
	// maxUnacked bounds the rotations a party may make before the peer
	// answers under its newest key: the older keys are kept until then.
	maxUnacked = 4
)

// MaxMessage bounds one sealed message: what a relay needs to accept.
const MaxMessage = headerLen + encLen + MaxPlaintext + tagLen

var suite = hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_ChaCha20Poly1305)

var scheme = hpke.KEM_X25519_HKDF_SHA256.Scheme()

var (
	// ErrNotAuthentic is returned for a handshake message or a message
	// that was not made by the other party of this channel: a wrong MAC,
	// an altered byte, a message of another channel or direction, or one
	// sealed with another key. Nothing changes.
	ErrNotAuthentic = errors.New("channel: message is not authentic for this channel")
	// ErrInviteSpent is returned by Accept on an invite that already
	// accepted a hello, and by Join on one already joined.
	ErrInviteSpent = errors.New("channel: invite already used")
	// ErrMalformed is wrapped by the errors for bytes that are not a
	// message of this protocol. Nothing changes.
	ErrMalformed = errors.New("channel: malformed message")
)

// OrderError is returned by Open for a message authentic in every other way
// but out of place: already received (Got < Want: replayed) or after a gap
// (Got > Want: messages Want..Got−1 are missing). Nothing changes; the
// message at Want still opens.
type OrderError struct {
	Want, Got uint64
}

func (e *OrderError) Error() string {
	if e.Got < e.Want {
		return fmt.Sprintf("channel: message %d was already received (expected %d)", e.Got, e.Want)
	}
	return fmt.Sprintf("channel: messages %d to %d are missing (got %d)", e.Want, e.Got-1, e.Got)
}

// Mailbox is the id a relay routes a channel's messages by. It is derived
// one-way from the invite's secret: knowing it opens nothing.
type Mailbox [16]byte

func (m Mailbox) String() string { return hex.EncodeToString(m[:]) }

// secrets are what both parties derive from the invite's secret.
type secrets struct {
	mailbox Mailbox
	mac     [32]byte // HMAC-SHA256 key of the handshake
	psk     [32]byte // HPKE PSK of every message
}

func derive(s []byte) (secrets, error) {
	var k secrets
	for _, d := range []struct {
		info string
		out  []byte
	}{
		{label + " mailbox", k.mailbox[:]},
		{label + " handshake mac", k.mac[:]},
		{label + " psk", k.psk[:]},
	} {
		b, err := hkdf.Key(sha256.New, s, nil, d.info, len(d.out))
		if err != nil {
			return secrets{}, err
		}
		copy(d.out, b)
	}
	return k, nil
}

// Invite is the out-of-band secret of one channel: made by the inviter
// (NewInvite), read by the joiner (ParseInvite). It never prints its
// secret; Text is the only way out.
type Invite struct {
	role   Role // Inviter for NewInvite, Joiner for ParseInvite
	secret [secretLen]byte
	k      secrets
	spent  bool
}

// NewInvite draws a fresh invite for the inviter. rand is crypto/rand's
// Reader when nil.
func NewInvite(rnd io.Reader) (*Invite, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	inv := &Invite{role: Inviter}
	if _, err := io.ReadFull(rnd, inv.secret[:]); err != nil {
		return nil, fmt.Errorf("channel: drawing an invite: %w", err)
	}
	k, err := derive(inv.secret[:])
	if err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	inv.k = k
	return inv, nil
}

// ParseInvite reads an invite's text (from Text, e.g. a QR code) for the
// joiner.
func ParseInvite(text string) (*Invite, error) {
	b, err := decodeText(text)
	if err != nil {
		return nil, err
	}
	inv := &Invite{role: Joiner}
	copy(inv.secret[:], b)
	clear(b)
	k, err := derive(inv.secret[:])
	if err != nil {
		return nil, fmt.Errorf("channel: %w", err)
	}
	inv.k = k
	clear(inv.secret[:]) // the joiner has no use for it once derived
	return inv, nil
}

// decodeText returns the secret of an invite's text.
func decodeText(text string) ([]byte, error) {
	rest, ok := strings.CutPrefix(text, textPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: an invite starts with %q", ErrMalformed, textPrefix)
	}
	// Exactly 43 characters: the decoder alone would skip line breaks.
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != secretLen || len(rest) != base64.RawURLEncoding.EncodedLen(secretLen) {
		clear(b)
		return nil, fmt.Errorf("%w: an invite holds %d bytes in unpadded base64url", ErrMalformed, secretLen)
	}
	return b, nil
}

// Text is the invite for the out-of-band path ("kmrelay1:" and 43
// base64url characters): it holds the secret, so show it only to the
// party meant to join. It is empty for a joiner's invite and once the
// invite is spent.
func (inv *Invite) Text() string {
	if inv.role != Inviter || inv.spent {
		return ""
	}
	return textPrefix + base64.RawURLEncoding.EncodeToString(inv.secret[:])
}

// Mailbox is the relay's id for the invite's channel.
func (inv *Invite) Mailbox() Mailbox { return inv.k.mailbox }

// Format prints the mailbox only, never the secret, whatever the verb.
func (inv Invite) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "channel.Invite{%s, mailbox %s}", inv.role, inv.k.mailbox)
}

// keyPair is a fresh X25519 key pair of this package's KEM.
type keyPair struct {
	sk  kem.PrivateKey
	pk  kem.PublicKey
	raw [keyLen]byte // pk's bytes
}

func newKeyPair(rnd io.Reader) (keyPair, error) {
	seed := make([]byte, scheme.SeedSize())
	defer clear(seed)
	if _, err := io.ReadFull(rnd, seed); err != nil {
		return keyPair{}, fmt.Errorf("channel: drawing a key: %w", err)
	}
	pk, sk := scheme.DeriveKeyPair(seed)
	b, err := pk.MarshalBinary()
	if err != nil || len(b) != keyLen {
		return keyPair{}, errors.New("channel: encoding a public key")
	}
	var kp keyPair
	kp.sk, kp.pk = sk, pk
	copy(kp.raw[:], b)
	return kp, nil
}

// peerKey decodes a peer's public key, refusing a low-order point (its
// X25519 output is all zeros, RFC 7748 §6.1; RFC 9180 §7.1.4 has DHKEM
// abort on it).
func peerKey(own keyPair, b []byte) (kem.PublicKey, error) {
	skb, err := own.sk.MarshalBinary()
	if err != nil {
		return nil, errors.New("channel: encoding a private key")
	}
	defer clear(skb)
	if _, err := curve25519.X25519(skb, b); err != nil {
		return nil, fmt.Errorf("%w: a low-order public key", ErrMalformed)
	}
	pk, err := scheme.UnmarshalBinaryPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: a public key", ErrMalformed)
	}
	return pk, nil
}

func handshakeMAC(k *secrets, sender Role, keys ...[]byte) []byte {
	m := hmac.New(sha256.New, k.mac[:])
	m.Write([]byte(label))
	m.Write([]byte{0, byte(sender)})
	m.Write(k.mailbox[:])
	for _, key := range keys {
		m.Write(key)
	}
	return m.Sum(nil)
}

func parseHandshake(b []byte, typ byte) (key, mac []byte, err error) {
	if len(b) != handshakeLn {
		return nil, nil, fmt.Errorf("%w: a handshake message is %d bytes, got %d", ErrMalformed, handshakeLn, len(b))
	}
	if b[0] != version || b[1] != typ {
		return nil, nil, fmt.Errorf("%w: version %d type %d, want version %d type %d", ErrMalformed, b[0], b[1], version, typ)
	}
	return b[2 : 2+keyLen], b[2+keyLen:], nil
}

// Joining is a joiner's handshake between its hello and the inviter's
// welcome.
type Joining struct {
	k    secrets
	own  keyPair
	done bool
	rand io.Reader
}

// Format prints nothing secret, whatever the verb.
func (j Joining) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "channel.Joining{mailbox %s}", j.k.mailbox)
}

// Join starts the joiner's handshake: it returns the hello to send to the
// inviter through the relay. An invite joins once. rand is crypto/rand's
// Reader when nil; it also serves the channel's later messages.
func (inv *Invite) Join(rnd io.Reader) (*Joining, []byte, error) {
	if inv.role != Joiner {
		return nil, nil, errors.New("channel: Join is the joiner's: the inviter calls Accept")
	}
	if inv.spent {
		return nil, nil, ErrInviteSpent
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	own, err := newKeyPair(rnd)
	if err != nil {
		return nil, nil, err
	}
	inv.spent = true
	hello := append([]byte{version, typeHello}, own.raw[:]...)
	hello = append(hello, handshakeMAC(&inv.k, Joiner, own.raw[:])...)
	return &Joining{k: inv.k, own: own, rand: rnd}, hello, nil
}

// Finish checks the inviter's welcome and returns the joiner's channel. A
// welcome that is not authentic (ErrNotAuthentic) or malformed changes
// nothing: the joiner may wait for another.
func (j *Joining) Finish(welcome []byte) (*Channel, error) {
	if j.done {
		return nil, errors.New("channel: handshake already finished")
	}
	key, mac, err := parseHandshake(welcome, typeWelcome)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(mac, handshakeMAC(&j.k, Inviter, j.own.raw[:], key)) {
		return nil, ErrNotAuthentic
	}
	peer, err := peerKey(j.own, key)
	if err != nil {
		return nil, err
	}
	j.done = true
	return newChannel(j.k, Joiner, j.own, peer, j.rand), nil
}

// Accept checks a joiner's hello and returns the inviter's channel and the
// welcome to send back. A hello that is not authentic or malformed changes
// nothing: the invite still accepts the joiner's real one. Once a hello
// is accepted the invite is spent (ErrInviteSpent) and forgets its secret.
// rand is crypto/rand's Reader when nil; it also serves the channel's
// later messages.
func (inv *Invite) Accept(hello []byte, rnd io.Reader) (*Channel, []byte, error) {
	if inv.role != Inviter {
		return nil, nil, errors.New("channel: Accept is the inviter's: the joiner calls Join")
	}
	if inv.spent {
		return nil, nil, ErrInviteSpent
	}
	key, mac, err := parseHandshake(hello, typeHello)
	if err != nil {
		return nil, nil, err
	}
	if !hmac.Equal(mac, handshakeMAC(&inv.k, Joiner, key)) {
		return nil, nil, ErrNotAuthentic
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	own, err := newKeyPair(rnd)
	if err != nil {
		return nil, nil, err
	}
	peer, err := peerKey(own, key)
	if err != nil {
		return nil, nil, err
	}
	inv.spent = true
	clear(inv.secret[:])
	welcome := append([]byte{version, typeWelcome}, own.raw[:]...)
	welcome = append(welcome, handshakeMAC(&inv.k, Inviter, key, own.raw[:])...)
	return newChannel(inv.k, Inviter, own, peer, rnd), welcome, nil
}
