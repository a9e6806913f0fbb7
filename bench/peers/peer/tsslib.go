package peer

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/bnb-chain/tss-lib/v2/common"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/keygen"
	"github.com/bnb-chain/tss-lib/v2/ecdsa/signing"
	"github.com/bnb-chain/tss-lib/v2/tss"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	golog "github.com/ipfs/go-log"
)

// TSSPreParams are tss-lib's per-party pre-parameters (a Paillier key and a
// Pedersen modulus NTilde with h1, h2, all from safe primes). Generating
// them takes seconds to minutes per party, so they are made once for a run
// and reused by every keygen; tss-lib's own tests do the same with fixtures.
type TSSPreParams struct {
	params []keygen.LocalPreParams
	source string
}

// Source says where the pre-parameters came from.
func (pp *TSSPreParams) Source() string { return pp.source }

// Len is the number of parties the pre-parameters are for.
func (pp *TSSPreParams) Len() int { return len(pp.params) }

// TSSFixturePreParams loads the pre-parameters of n parties (n ≤ 5) from
// the test fixtures that the tss-lib module ships
// (test/_ecdsa_fixtures/keygen_data_*.json in the module cache). They are
// public test data: fine for timing, never for keys.
func TSSFixturePreParams(n int) (*TSSPreParams, error) {
	saves, _, err := keygen.LoadKeygenTestFixtures(n)
	if err != nil {
		return nil, fmt.Errorf("peer: tss-lib fixtures: %w", err)
	}
	pp := &TSSPreParams{source: fmt.Sprintf("tss-lib v2.0.2 test fixtures (%d parties)", n)}
	for _, s := range saves {
		pp.params = append(pp.params, s.LocalPreParams)
	}
	return pp, nil
}

// TSSGeneratePreParams generates the pre-parameters of n parties, one after
// the other, each with tss-lib's GeneratePreParams and the given timeout.
func TSSGeneratePreParams(n int, timeout time.Duration) (*TSSPreParams, error) {
	start := time.Now()
	pp := &TSSPreParams{}
	for i := range n {
		p, err := keygen.GeneratePreParams(timeout)
		if err != nil {
			return nil, fmt.Errorf("peer: tss-lib pre-parameters for party %d: %w", i, err)
		}
		pp.params = append(pp.params, *p)
	}
	pp.source = fmt.Sprintf("generated once for this run (%d parties, %s)", n, time.Since(start).Round(time.Second))
	return pp, nil
}

var quietTSS sync.Once

// NewTSSLib returns tss-lib's GG18/GG20 ECDSA at t-of-n (tss-lib's own
// "threshold" parameter is t-1). pre must hold at least n parties'
// pre-parameters. Keygen runs with tss-lib's default security settings
// (the Paillier-Blum modulus and no-small-factor proofs are on).
//
// NewTSSLib raises tss-lib's global logger to error level: the library logs
// every round at info level otherwise.
func NewTSSLib(t, n int, pre *TSSPreParams, timeout time.Duration) (Protocol, error) {
	if t < 2 || t > n {
		return nil, fmt.Errorf("peer: tss-lib: invalid %d-of-%d", t, n)
	}
	if pre == nil || pre.Len() < n {
		return nil, fmt.Errorf("peer: tss-lib: need pre-parameters for %d parties", n)
	}
	quietTSS.Do(func() { _ = golog.SetLogLevel("tss-lib", "error") })
	return &tssLib{t: t, n: n, pre: pre, timeout: timeout}, nil
}

type tssLib struct {
	t, n    int
	pre     *TSSPreParams
	timeout time.Duration
}

func (p *tssLib) Name() string { return "tss-lib v2.0.2 GG18/20" }
func (p *tssLib) T() int       { return p.t }
func (p *tssLib) N() int       { return p.n }
func (p *tssLib) Note() string {
	return "Paillier/NTilde pre-params not timed: " + p.pre.Source()
}

type tssKey struct {
	ids   tss.SortedPartyIDs
	saves []keygen.LocalPartySaveData // by index in ids
	pub   *secp256k1.PublicKey
}

func (k *tssKey) PublicKey() *secp256k1.PublicKey { return k.pub }

func (p *tssLib) Keygen() (Key, error) {
	ids := make(tss.UnSortedPartyIDs, p.n)
	for i := range ids {
		key, err := rand.Int(rand.Reader, tss.S256().Params().N)
		if err != nil {
			return nil, wrap(p, "keygen", err)
		}
		name := fmt.Sprintf("P%d", i+1)
		ids[i] = tss.NewPartyID(name, name, key)
	}
	sorted := tss.SortPartyIDs(ids)
	pctx := tss.NewPeerContext(sorted)
	out := make(chan tss.Message, 4*p.n*p.n)
	end := make(chan *keygen.LocalPartySaveData, p.n)
	parties := make([]tss.Party, p.n)
	for i, id := range sorted {
		params := tss.NewParameters(tss.S256(), pctx, id, p.n, p.t-1)
		parties[i] = keygen.NewLocalParty(params, out, end, p.pre.params[i])
	}
	results, _, err := runTSS(parties, out, end, p.timeout)
	if err != nil {
		return nil, wrap(p, "keygen", err)
	}
	k := &tssKey{ids: sorted, saves: make([]keygen.LocalPartySaveData, p.n)}
	for _, r := range results {
		i, err := r.OriginalIndex()
		if err != nil {
			return nil, wrap(p, "keygen", err)
		}
		k.saves[i] = *r
	}
	pub := k.saves[0].ECDSAPub
	var x, y secp256k1.FieldVal
	if x.SetByteSlice(pub.X().Bytes()) || y.SetByteSlice(pub.Y().Bytes()) {
		return nil, wrap(p, "keygen", errors.New("public key coordinate overflows"))
	}
	k.pub = secp256k1.NewPublicKey(&x, &y)
	if !k.pub.IsOnCurve() {
		return nil, wrap(p, "keygen", errors.New("public key not on the curve"))
	}
	return k, nil
}

func (p *tssLib) Sign(key Key, digest []byte) (*Signature, error) {
	k, ok := key.(*tssKey)
	if !ok || len(digest) != 32 {
		return nil, wrap(p, "sign", errors.New("bad key or digest"))
	}
	// Fresh PartyIDs: SortPartyIDs renumbers the ones it is given.
	ids := make(tss.UnSortedPartyIDs, p.t)
	for i := range ids {
		ids[i] = tss.NewPartyID(k.ids[i].Id, k.ids[i].Moniker, k.ids[i].KeyInt())
	}
	sorted := tss.SortPartyIDs(ids)
	pctx := tss.NewPeerContext(sorted)
	out := make(chan tss.Message, 4*p.t*p.t)
	end := make(chan *common.SignatureData, p.t)
	m := new(big.Int).SetBytes(digest)
	parties := make([]tss.Party, p.t)
	for i, id := range sorted {
		params := tss.NewParameters(tss.S256(), pctx, id, p.t, p.t-1)
		parties[i] = signing.NewLocalParty(m, params, k.saves[i], out, end, len(digest))
	}
	results, bytes, err := runTSS(parties, out, end, p.timeout)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig, err := sigFromBytes(results[0].R, results[0].S)
	if err != nil {
		return nil, wrap(p, "sign", err)
	}
	sig.Bytes = bytes
	return sig, nil
}

// runTSS starts parties and routes their messages the way tss-lib's tests
// do (each delivery serialised with WireBytes, parsed with
// ParseWireMessage and handed to Update on its own goroutine) until every
// party has sent its result on end. It returns the results and the bytes
// delivered.
func runTSS[T any](parties []tss.Party, out chan tss.Message, end chan T, timeout time.Duration) ([]T, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	errc := make(chan error, 4*len(parties)*len(parties))
	for _, party := range parties {
		go func() {
			if err := party.Start(); err != nil {
				errc <- err
			}
		}()
	}
	deliver := func(to tss.Party, bz []byte, msg tss.Message) {
		pm, err := tss.ParseWireMessage(bz, msg.GetFrom(), msg.IsBroadcast())
		if err != nil {
			errc <- err
			return
		}
		if _, err := to.Update(pm); err != nil {
			errc <- err
		}
	}
	var results []T
	bytes := 0
	for len(results) < len(parties) {
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("timed out after %s", timeout)
		case err := <-errc:
			return nil, 0, err
		case r := <-end:
			results = append(results, r)
		case msg := <-out:
			bz, _, err := msg.WireBytes()
			if err != nil {
				return nil, 0, err
			}
			from := msg.GetFrom().Index
			if dest := msg.GetTo(); dest == nil {
				for i, to := range parties {
					if i != from {
						bytes += len(bz)
						go deliver(to, bz, msg)
					}
				}
			} else {
				for _, d := range dest {
					if d.Index == from || d.Index >= len(parties) {
						return nil, 0, fmt.Errorf("party %d sent to bad index %d", from, d.Index)
					}
					bytes += len(bz)
					go deliver(parties[d.Index], bz, msg)
				}
			}
		}
	}
	return results, bytes, nil
}
