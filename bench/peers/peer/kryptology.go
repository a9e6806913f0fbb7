package peer

import (
	"errors"
	"hash"

	"github.com/coinbase/kryptology/pkg/core/curves"
	"github.com/coinbase/kryptology/pkg/core/protocol"
	dkls "github.com/coinbase/kryptology/pkg/tecdsa/dkls/v1"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// NewKryptology returns kryptology's 2-of-2 DKLs18 (Doerner, Kondi, Lee,
// shelat, IEEE S&P 2018): Alice and Bob stepped alternately in one
// goroutine, as the library's own tests do. Its signing API hashes the
// message itself; Sign hands it the digest through an identity "hash", so
// the same 32 bytes are signed as for the other protocols.
func NewKryptology() Protocol { return kryptology{} }

type kryptology struct{}

func (kryptology) Name() string { return "kryptology v1.8.0 DKLs18" }
func (kryptology) T() int       { return 2 }
func (kryptology) N() int       { return 2 }
func (kryptology) Note() string {
	return "2-of-2 only; bytes = sum of message payloads; sign includes decoding the stored DKG output"
}

type kryptologyKey struct {
	alice, bob *protocol.Message // encoded DKG outputs, as the library stores them
	pub        *secp256k1.PublicKey
}

func (k *kryptologyKey) PublicKey() *secp256k1.PublicKey { return k.pub }

// stepKryptology cranks first and second alternately until both finish,
// as kryptology's runIteratedProtocol test helper does, and returns the
// payload bytes exchanged.
func stepKryptology(first, second protocol.Iterator) (int, error) {
	var msg *protocol.Message
	var err1, err2 error
	bytes := 0
	count := func(m *protocol.Message) {
		if m == nil {
			return
		}
		for _, b := range m.Payloads {
			bytes += len(b)
		}
	}
	for err1 != protocol.ErrProtocolFinished || err2 != protocol.ErrProtocolFinished {
		msg, err1 = first.Next(msg)
		if err1 != nil && err1 != protocol.ErrProtocolFinished {
			return 0, err1
		}
		count(msg)
		msg, err2 = second.Next(msg)
		if err2 != nil && err2 != protocol.ErrProtocolFinished {
			return 0, err2
		}
		count(msg)
	}
	return bytes, nil
}

func (p kryptology) Keygen() (Key, error) {
	alice := dkls.NewAliceDkg(curves.K256(), protocol.Version1)
	bob := dkls.NewBobDkg(curves.K256(), protocol.Version1)
	// For DKG Bob moves first.
	if _, err := stepKryptology(bob, alice); err != nil {
		return nil, wrap(p, "keygen", err)
	}
	k := &kryptologyKey{}
	var err error
	if k.alice, err = alice.Result(protocol.Version1); err != nil {
		return nil, wrap(p, "keygen", err)
	}
	if k.bob, err = bob.Result(protocol.Version1); err != nil {
		return nil, wrap(p, "keygen", err)
	}
	if !alice.Output().PublicKey.Equal(bob.Output().PublicKey) {
		return nil, wrap(p, "keygen", errors.New("parties disagree on the public key"))
	}
	if k.pub, err = secp256k1.ParsePubKey(alice.Output().PublicKey.ToAffineCompressed()); err != nil {
		return nil, wrap(p, "keygen", err)
	}
	return k, nil
}

func (p kryptology) Sign(key Key, digest []byte) (*Signature, error) {
	k, ok := key.(*kryptologyKey)
	if !ok || len(digest) != 32 {
		return nil, wrap(p, "sign", errors.New("bad key or digest"))
	}
	alice, err := dkls.NewAliceSign(curves.K256(), new(identityHash), digest, k.alice, protocol.Version1)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	bob, err := dkls.NewBobSign(curves.K256(), new(identityHash), digest, k.bob, protocol.Version1)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	// For signing Alice moves first.
	bytes, err := stepKryptology(alice, bob)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	res, err := bob.Result(protocol.Version1)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	s, err := dkls.DecodeSignature(res)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig, err := sigFromBytes(s.R.Bytes(), s.S.Bytes())
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig.Bytes = bytes
	return sig, nil
}

// identityHash is a hash.Hash whose Sum is what was written: it lets
// kryptology sign a digest computed by the caller.
type identityHash struct{ b []byte }

var _ hash.Hash = (*identityHash)(nil)

func (h *identityHash) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }
func (h *identityHash) Sum(b []byte) []byte         { return append(b, h.b...) }
func (h *identityHash) Reset()                      { h.b = h.b[:0] }
func (h *identityHash) Size() int                   { return 32 }
func (h *identityHash) BlockSize() int              { return 32 }
