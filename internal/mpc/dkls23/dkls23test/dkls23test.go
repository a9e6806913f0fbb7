// Package dkls23test runs keymesh's DKLs23 protocols with every party in one
// process on the mpctest network, for tests and benchmarks (ours and
// bench/peers). It is not for production: the node runs one party per
// process and moves bytes between them.
package dkls23test

import (
	"crypto/rand"
	"fmt"
	"slices"

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
