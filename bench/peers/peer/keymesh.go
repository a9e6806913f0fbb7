package peer

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// KeymeshName is the Name of the keymesh rows that the peers are compared
// with (NewKeymesh).
const KeymeshName = "keymesh DKLs23"

// NewKeymesh returns keymesh's DKLs23 (internal/mpc/dkls23) at t-of-n with
// a goroutine per party (dkls23test.RunConcurrent), as separate nodes would
// run and as the peers are run here; each signer verifies the signature
// before output.
func NewKeymesh(t, n int) (Protocol, error) { return newKeymesh(t, n, false) }

// NewKeymeshSequential is NewKeymesh with every party stepped in one
// goroutine on the mpctest network (shuffled delivery), the way keymesh's
// own package benchmarks run: its time is the sum of every party's work.
func NewKeymeshSequential(t, n int) (Protocol, error) { return newKeymesh(t, n, true) }

func newKeymesh(t, n int, sequential bool) (Protocol, error) {
	if t < dkls23.MinThreshold || t > n || n > dkls23.MaxParties {
		return nil, fmt.Errorf("peer: keymesh: invalid %d-of-%d", t, n)
	}
	return &keymesh{t: t, n: n, sequential: sequential}, nil
}

type keymesh struct {
	t, n       int
	sequential bool
	seed       atomic.Uint64
}

func (p *keymesh) Name() string {
	if p.sequential {
		return KeymeshName + " (sequential)"
	}
	return KeymeshName
}
func (p *keymesh) T() int { return p.t }
func (p *keymesh) N() int { return p.n }
func (p *keymesh) Note() string {
	if p.sequential {
		return "all parties in one goroutine: sum of the parties' work"
	}
	return "a goroutine per party"
}

func (p *keymesh) run(ss []*round.Session) *mpctest.Result {
	if p.sequential {
		return mpctest.Run(ss, nil, p.seed.Add(1))
	}
	return dkls23test.RunConcurrent(ss)
}

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
	shares, err := dkls23test.Shares(p.run(ss), ps)
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
	res := p.run(ss)
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
