package peer

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// NewKeymesh returns keymesh's DKLs23 (internal/mpc/dkls23) at t-of-n,
// run the way its own benchmarks run it: every party's round.Session on
// the in-process mpctest network (messages encoded to count bytes, order
// shuffled by a seed), each signer verifying the signature before output.
func NewKeymesh(t, n int) (Protocol, error) {
	if t < dkls23.MinThreshold || t > n || n > dkls23.MaxParties {
		return nil, fmt.Errorf("peer: keymesh: invalid %d-of-%d", t, n)
	}
	return &keymesh{t: t, n: n}, nil
}

type keymesh struct {
	t, n int
	seed atomic.Uint64
}

func (p *keymesh) Name() string { return "keymesh DKLs23" }
func (p *keymesh) T() int       { return p.t }
func (p *keymesh) N() int       { return p.n }
func (p *keymesh) Note() string { return "" }

type keymeshKey struct {
	shares []*dkls23.Share
	pub    *secp256k1.PublicKey
}

func (k *keymeshKey) PublicKey() *secp256k1.PublicKey { return k.pub }

func (p *keymesh) Keygen() (Key, error) {
	ps := dkls23test.Parties(p.n)
	ss, err := dkls23test.KeygenSessions(p.t, ps, dkls23test.Nonce())
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	shares, err := dkls23test.Shares(mpctest.Run(ss, nil, p.seed.Add(1)), ps)
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	pub := shares[0].PublicKey()
	pub.ToAffine()
	return &keymeshKey{shares: shares, pub: secp256k1.NewPublicKey(&pub.X, &pub.Y)}, nil
}

func (p *keymesh) Sign(key Key, digest []byte) (*Signature, error) {
	k, ok := key.(*keymeshKey)
	if !ok || len(digest) != 32 {
		return nil, wrap(p, "sign", errors.New("bad key or digest"))
	}
	signers := dkls23test.Parties(p.t)
	ss, err := dkls23test.SignSessions(k.shares, signers, digest, dkls23test.Nonce())
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	res := mpctest.Run(ss, nil, p.seed.Add(1))
	if err := res.Err(); err != nil {
		return nil, wrap(p, "sign", err)
	}
	out, ok := res.Outputs[signers[0]].(*dkls23.Signature)
	if !ok {
		return nil, wrap(p, "sign", fmt.Errorf("output of type %T", res.Outputs[signers[0]]))
	}
	sig := &Signature{R: out.R, S: out.S}
	for _, b := range res.Bytes {
		sig.Bytes += b
	}
	return sig, nil
}
