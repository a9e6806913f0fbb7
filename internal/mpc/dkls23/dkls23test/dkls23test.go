// Package dkls23test runs keymesh's DKLs23 protocols with every party in one
// process on the mpctest network, for tests and benchmarks (ours and
// bench/peers). It is not for production: the node runs one party per
// process and moves bytes between them.
package dkls23test

import (
	"crypto/rand"
	"fmt"
	"slices"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/keygen"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// Parties returns the party IDs 1…n.
func Parties(n int) []round.PartyID {
	ps := make([]round.PartyID, n)
	for i := range ps {
		ps[i] = round.PartyID(i + 1)
	}
	return ps
}

// Nonce returns a fresh 32-byte session nonce.
func Nonce() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// KeygenSessions returns one key generation session per party.
func KeygenSessions(t int, parties []round.PartyID, nonce []byte) ([]*round.Session, error) {
	var ss []*round.Session
	for _, p := range parties {
		s, err := keygen.NewSession(p, parties, t, nonce, rand.Reader)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// Shares collects the *dkls23.Share outputs of a run, in party order.
func Shares(res *mpctest.Result, parties []round.PartyID) ([]*dkls23.Share, error) {
	if err := res.Err(); err != nil {
		return nil, err
	}
	var out []*dkls23.Share
	for _, p := range parties {
		s, ok := res.Outputs[p].(*dkls23.Share)
		if !ok {
			return nil, fmt.Errorf("dkls23test: %v output %T", p, res.Outputs[p])
		}
		out = append(out, s)
	}
	return out, nil
}

// Keygen runs a t-of-n key generation among parties 1…n.
func Keygen(t, n int, seed uint64) ([]*dkls23.Share, error) {
	ps := Parties(n)
	ss, err := KeygenSessions(t, ps, Nonce())
	if err != nil {
		return nil, err
	}
	return Shares(mpctest.Run(ss, nil, seed), ps)
}

// SignSessions returns one signing session per share, all signing digest
// under nonce with signer set signers.
func SignSessions(shares []*dkls23.Share, signers []round.PartyID, digest, nonce []byte) ([]*round.Session, error) {
	var ss []*round.Session
	for _, sh := range shares {
		if !slices.Contains(signers, sh.Self()) {
			continue
		}
		s, err := sign.NewSession(sh, signers, digest, nonce, rand.Reader)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// Sign runs one signing session among the holders of shares that are in
// signers and returns the signature every party output (they must agree)
// and the run's result.
func Sign(shares []*dkls23.Share, signers []round.PartyID, digest []byte, rule mpctest.Rule, seed uint64) (*dkls23.Signature, *mpctest.Result, error) {
	ss, err := SignSessions(shares, signers, digest, Nonce())
	if err != nil {
		return nil, nil, err
	}
	res := mpctest.Run(ss, rule, seed)
	if err := res.Err(); err != nil {
		return nil, res, err
	}
	var first *dkls23.Signature
	for _, p := range signers {
		sig, ok := res.Outputs[p].(*dkls23.Signature)
		if !ok {
			return nil, res, fmt.Errorf("dkls23test: %v output %T", p, res.Outputs[p])
		}
		if first == nil {
			first = sig
		} else if !first.R.Equals(&sig.R) || !first.S.Equals(&sig.S) || first.V != sig.V {
			return nil, res, fmt.Errorf("dkls23test: %v output a different signature", p)
		}
	}
	return first, res, nil
}

// RefreshSessions returns one refresh session per share.
func RefreshSessions(shares []*dkls23.Share, nonce []byte) ([]*round.Session, error) {
	var ss []*round.Session
	for _, sh := range shares {
		s, err := keygen.NewRefreshSession(sh, nonce, rand.Reader)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// Refresh runs a refresh of every share and returns the new shares in the
// same order.
func Refresh(shares []*dkls23.Share, seed uint64) ([]*dkls23.Share, error) {
	ss, err := RefreshSessions(shares, Nonce())
	if err != nil {
		return nil, err
	}
	var ps []round.PartyID
	for _, sh := range shares {
		ps = append(ps, sh.Self())
	}
	return Shares(mpctest.Run(ss, nil, seed), ps)
}

// Reshare moves the key of shares to newParties with threshold t: the
// holders of shares in dealers deal, parties in newParties without a share
// join with the public data of shares[0]. It returns the new shares in
// party order and the dealers that left.
func Reshare(shares []*dkls23.Share, dealers, newParties []round.PartyID, t int, seed uint64) ([]*dkls23.Share, []round.PartyID, error) {
	nonce := Nonce()
	byID := map[round.PartyID]*dkls23.Share{}
	for _, sh := range shares {
		byID[sh.Self()] = sh
	}
	pub := shares[0].PublicKey()
	oldPub := map[round.PartyID]*secp256k1.JacobianPoint{}
	for _, d := range dealers {
		x, err := shares[0].PublicShare(d)
		if err != nil {
			return nil, nil, err
		}
		oldPub[d] = x
	}
	all := slices.Clone(dealers)
	for _, p := range newParties {
		if !slices.Contains(all, p) {
			all = append(all, p)
		}
	}
	slices.Sort(all)
	var ss []*round.Session
	for _, p := range all {
		cfg := keygen.ReshareConfig{Self: p, Dealers: dealers, NewParties: newParties, NewThreshold: t, Nonce: nonce}
		if slices.Contains(dealers, p) || (byID[p] != nil && slices.Contains(newParties, p)) {
			cfg.Old = byID[p]
		}
		if cfg.Old == nil {
			cfg.PublicKey, cfg.OldPublicShares = pub, oldPub
		}
		s, err := keygen.NewReshareSession(cfg, rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		ss = append(ss, s)
	}
	res := mpctest.Run(ss, nil, seed)
	if err := res.Err(); err != nil {
		return nil, nil, err
	}
	var departed []round.PartyID
	for _, p := range all {
		if _, ok := res.Outputs[p].(*keygen.Departed); ok {
			departed = append(departed, p)
		}
	}
	out, err := Shares(res, slices.Sorted(slices.Values(newParties)))
	return out, departed, err
}

// SkipUnderRace skips a test when the race detector is on. The protocols
// run every party in one goroutine, so -race finds nothing in them; it only
// slows the base OTs of key generation twenty-fold. The tests it skips run
// in every ordinary `go test`.
func SkipUnderRace(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("expensive key generation; runs without -race")
	}
}

// Race reports whether the race detector is on, for tests that run fewer
// iterations under it.
func Race() bool { return raceEnabled }
