package keygen_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/curve"
	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dlog"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/keygen"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// combine returns Σ λ_i·x_i over the given shares: the secret key if they
// are at least t consistent shares.
func combine(t *testing.T, shares []*dkls23.Share) *secp256k1.ModNScalar {
	t.Helper()
	var ids []round.PartyID
	for _, s := range shares {
		ids = append(ids, s.Self())
	}
	var sk secp256k1.ModNScalar
	for _, s := range shares {
		l, err := dkls23.Lagrange(ids, s.Self())
		if err != nil {
			t.Fatal(err)
		}
		sk.Add(l.Mul(s.SecretShare()))
	}
	return &sk
}

func publicOf(sk *secp256k1.ModNScalar) *secp256k1.JacobianPoint {
	var p secp256k1.JacobianPoint
	secp256k1.ScalarBaseMultNonConst(sk, &p)
	return &p
}

// checkShares asserts that the shares are one consistent t-of-n sharing of
// the key pub: every t of them combine to the secret of pub, fewer do not,
// and every party holds the same public data.
func checkShares(t *testing.T, shares []*dkls23.Share, threshold int, pub *secp256k1.JacobianPoint) {
	t.Helper()
	for _, s := range shares {
		if !dkls23.EqualPoints(s.PublicKey(), pub) {
			t.Fatalf("%v has another public key", s.Self())
		}
		if s.Threshold() != threshold || len(s.Parties()) != len(shares) {
			t.Fatalf("%v: %d-of-%d", s.Self(), s.Threshold(), len(s.Parties()))
		}
		if s.Generation() != shares[0].Generation() {
			t.Fatalf("%v has another generation", s.Self())
		}
	}
	for start := 0; start+threshold <= len(shares); start++ {
		sk := combine(t, shares[start:start+threshold])
		if !dkls23.EqualPoints(publicOf(sk), pub) {
			t.Fatalf("shares %d..%d do not combine to the key", start, start+threshold-1)
		}
		if threshold > 1 {
			sk := combine(t, shares[start:start+threshold-1])
			if dkls23.EqualPoints(publicOf(sk), pub) {
				t.Fatal("t-1 shares combine to the key")
			}
		}
	}
}

func TestKeygen(t *testing.T) {
	for _, tc := range []struct{ t, n int }{{2, 2}, {2, 3}, {3, 5}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.t, tc.n), func(t *testing.T) {
			if tc.n > 3 {
				dkls23test.SkipUnderRace(t)
			}
			shares, err := dkls23test.Keygen(tc.t, tc.n, 7)
			if err != nil {
				t.Fatal(err)
			}
			checkShares(t, shares, tc.t, shares[0].PublicKey())
			// Pairwise seeds agree and differ between pairs.
			for _, a := range shares {
				for _, b := range shares {
					if a.Self() < b.Self() && a.Peer(b.Self()).Seed() != b.Peer(a.Self()).Seed() {
						t.Fatalf("seed of %v and %v differs", a.Self(), b.Self())
					}
				}
			}
		})
	}
}

func TestKeygenRejectsBadParameters(t *testing.T) {
	nonce := dkls23test.Nonce()
	for _, tc := range []struct {
		name    string
		parties []round.PartyID
		t       int
	}{
		{"threshold 1", []round.PartyID{1, 2, 3}, 1},
		{"threshold above n", []round.PartyID{1, 2, 3}, 4},
		{"party zero", []round.PartyID{0, 1, 2}, 2},
		{"duplicate party", []round.PartyID{1, 2, 2}, 2},
		{"17 parties", dkls23test.Parties(17), 2},
	} {
		if _, err := keygen.NewSession(1, tc.parties, tc.t, nonce, rand.Reader); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if _, err := keygen.NewSession(1, dkls23test.Parties(3), 2, nonce[:8], rand.Reader); err == nil {
		t.Error("short nonce accepted")
	}
}

// wantAbortBlaming asserts that no party output anything and that every
// party other than culprit aborted naming exactly culprit.
func wantAbortBlaming(t *testing.T, res *mpctest.Result, culprit round.PartyID) {
	t.Helper()
	for p, out := range res.Outputs {
		if p != culprit {
			t.Fatalf("%v produced %T despite misbehaviour by %v", p, out, culprit)
		}
	}
	blamed := false
	for p, err := range res.Errors {
		if p == culprit {
			continue
		}
		var ae *round.AbortError
		if errors.As(err, &ae) {
			if !ae.Blames(culprit) || len(ae.Culprits) != 1 {
				t.Fatalf("%v: abort %v does not blame exactly %v", p, ae, culprit)
			}
			blamed = true
			continue
		}
		var stall *mpctest.StallError
		if !errors.As(err, &stall) {
			t.Fatalf("%v: %v", p, err)
		}
	}
	if !blamed {
		t.Fatalf("nobody blamed %v: %v", culprit, res.Errors)
	}
}

// Every message of key generation, altered by its sender, makes the honest
// party abort naming the sender. (Two parties keep the base OTs cheap; the
// three-party case of an inconsistent broadcast is below.)
func TestKeygenAlteredMessagesBlameSender(t *testing.T) {
	ps := dkls23test.Parties(2)
	cases := []struct {
		name   string
		round  uint16
		direct bool
		bit    int
	}{
		{"commitment", 3, false, 3},
		{"seed contribution", 3, true, 8*4 + 1}, // inside the seed field
		{"opening salt", 4, false, 8*4 + 5},
		{"opening commitment vector", 4, false, 8*(4+32+4) + 20},
		{"opening proof", 4, false, -8*2 - 1}, // last bytes: the proof's z
		{"rvole setup message 1 (base OT)", 3, true, 8*(4+32+4) + 8*50 + 3},
		{"rvole setup message 1, last byte", 3, true, -4},
		{"dealt share", 4, true, 8*4 + 100},
		// Message 2 is the base-OT receiver's points A_i; a flip that
		// leaves a valid point is the case of the next test.
		{"rvole setup message 2, invalid point A_0", 4, true, 8*(4+32+4) + 2},
		{"rvole setup message 2, invalid point A_127", 4, true, 8*(4+32+4+33*127) + 2},
		{"result digest", 5, false, 7},
		{"seed confirmation", 5, true, 9},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if i%2 == 1 {
				dkls23test.SkipUnderRace(t) // half the cases under -race
			}
			ss, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
			if err != nil {
				t.Fatal(err)
			}
			rule := mpctest.Alter(mpctest.Match{From: 2, Round: tc.round, Direct: mpctest.Ptr(tc.direct)}, func(m *round.Message) {
				bit := tc.bit
				if bit < 0 {
					bit += 8 * len(m.Payload)
				}
				m.Payload[bit/8] ^= 1 << (bit % 8)
			})
			wantAbortBlaming(t, mpctest.Run(ss, rule, 1), 2)
		})
	}
}

// A party that sends, as the base-OT receiver, a valid point A_i other than
// the one it computed (here −A_0) cannot be caught at setup: the base OT
// (Chou–Orlandi with the sender's proof, package baseot) gives the sender no
// way to check the receiver, whose choice bits A_i must hide. The pair's OT
// keys then disagree in one column, which hurts only the cheater (it holds
// no valid key for that column). What must hold is that nothing bad comes of
// it: the first signing between the two parties aborts, and nobody outputs a
// signature.
func TestKeygenSubstitutedBaseOTPointNeverSigns(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	ps := dkls23test.Parties(2)
	ss, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	rule := mpctest.Alter(mpctest.Match{From: 2, Round: 4, Direct: mpctest.Ptr(true)}, func(m *round.Message) {
		m.Payload[4+32+4] ^= 1 // 0x02 ↔ 0x03: the negated point, always valid
	})
	shares, err := dkls23test.Shares(mpctest.Run(ss, rule, 1), ps)
	if err != nil {
		t.Fatal(err) // the run completes: see above
	}
	digest := make([]byte, 32)
	rand.Read(digest)
	_, res, err := dkls23test.Sign(shares, ps, digest, nil, 1)
	if err == nil || len(res.Outputs) != 0 {
		t.Fatalf("signing with a broken OT setup: outputs %v, err %v", res.Outputs, err)
	}
	t.Logf("signing aborted: %v", res.Errors)
}

// A commitment vector of the wrong length (t+1 or t−1 points) is rejected
// even when the commitment to it is honest: the dealer is the culprit.
func TestKeygenWrongLengthCommitmentVector(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	ps := dkls23test.Parties(3)
	ss, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	// Drop the last commitment field from party 3's opening.
	rule := mpctest.Alter(mpctest.Match{From: 3, Round: 4, Direct: mpctest.Ptr(false)}, func(m *round.Message) {
		f, err := dkls23.SplitFields(m.Payload, 4)
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		b = dkls23.AppendField(b, f[0])
		b = dkls23.AppendField(b, f[1])
		b = dkls23.AppendField(b, f[3])
		m.Payload = b
	})
	wantAbortBlaming(t, mpctest.Run(ss, rule, 2), 3)
}

// Party 2 sends party 3 a different commitment from the one party 1 gets:
// the echo check in the next round aborts. It names party 2 only where
// that is provable (party 2's own echo, or its opening against the
// commitment party 3 holds), and never an honest party.
func TestKeygenInconsistentBroadcast(t *testing.T) {
	ss, err := dkls23test.KeygenSessions(2, dkls23test.Parties(3), dkls23test.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	rule := mpctest.FlipBit(mpctest.Match{From: 2, To: 3, Round: 3, Direct: mpctest.Ptr(false)}, 11)
	if err := mpctest.CheckBlame(mpctest.Run(ss, rule, 3), 2, false); err != nil {
		t.Fatal(err)
	}
}

// Messages recorded in one key generation and replayed into another (with
// the new session's ID, as a transport-level attacker would need) fail: a
// proof of knowledge or an opening from another session does not verify.
func TestKeygenReplayFromAnotherSession(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	ps := dkls23test.Parties(2)
	var rec mpctest.Recorder
	ss, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	if err := mpctest.Run(ss, rec.Rule(), 4).Err(); err != nil {
		t.Fatal(err)
	}
	for _, rnd := range []uint16{3, 4} {
		t.Run(fmt.Sprintf("round %d broadcast", rnd), func(t *testing.T) {
			ss2, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
			if err != nil {
				t.Fatal(err)
			}
			rule := mpctest.Alter(mpctest.Match{From: 2, Round: rnd, Direct: mpctest.Ptr(false)}, func(m *round.Message) {
				for _, old := range rec.Seen {
					if old.From == 2 && old.Round == rnd && old.IsBroadcast() {
						m.Payload = append([]byte(nil), old.Payload...)
						return
					}
				}
				t.Fatal("nothing recorded")
			})
			res := mpctest.Run(ss2, rule, 5)
			wantAbortBlaming(t, res, 2)
		})
	}
	// Replaying whole messages of the old session is dropped by the engine.
	ss3, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	inject := func(to round.PartyID, m *round.Message) []*round.Message {
		out := []*round.Message{m}
		for _, old := range rec.Seen {
			if old.Round == m.Round && old.From == m.From && (old.To == to || old.IsBroadcast()) {
				out = append(out, old)
			}
		}
		return out
	}
	res := mpctest.Run(ss3, inject, 6)
	if err := res.Err(); err != nil {
		t.Fatalf("replayed old-session messages disturbed a run: %v", err)
	}
	if res.Dropped == 0 {
		t.Fatal("old-session messages were not dropped")
	}
}

func TestRefresh(t *testing.T) {
	shares, err := dkls23test.Keygen(2, 3, 8)
	if err != nil {
		t.Fatal(err)
	}
	pub := shares[0].PublicKey()
	fresh, err := dkls23test.Refresh(shares, 9)
	if err != nil {
		t.Fatal(err)
	}
	checkShares(t, fresh, 2, pub)
	for i := range fresh {
		if fresh[i].SecretShare().Equals(shares[i].SecretShare()) {
			t.Fatalf("%v kept its secret share", fresh[i].Self())
		}
		if fresh[i].Generation() == shares[i].Generation() {
			t.Fatal("generation unchanged")
		}
		for _, p := range fresh[i].Parties() {
			if p == fresh[i].Self() {
				continue
			}
			if fresh[i].Peer(p).Seed() == shares[i].Peer(p).Seed() {
				t.Fatal("zero-sharing seed unchanged")
			}
			if fresh[i].Peer(p).Alice().Equal(shares[i].Peer(p).Alice()) || fresh[i].Peer(p).Bob().Equal(shares[i].Peer(p).Bob()) {
				t.Fatal("rvole setup unchanged")
			}
		}
	}
	// An old share does not combine with new ones.
	mixed := []*dkls23.Share{shares[0], fresh[1]}
	if dkls23.EqualPoints(publicOf(combine(t, mixed)), pub) {
		t.Fatal("old and new shares combine to the key")
	}
}

// Every message of a refresh, altered by its sender, makes the honest party
// abort naming the sender.
func TestRefreshAlteredMessagesBlameSender(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	shares, err := dkls23test.Keygen(2, 2, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, rnd := range []uint16{3, 4, 5} {
		for _, direct := range []bool{false, true} {
			t.Run(fmt.Sprintf("round %d direct %v", rnd, direct), func(t *testing.T) {
				ss, err := dkls23test.RefreshSessions(shares, dkls23test.Nonce())
				if err != nil {
					t.Fatal(err)
				}
				rule := mpctest.FlipBit(mpctest.Match{From: 2, Round: rnd, Direct: mpctest.Ptr(direct)}, 8*4+8*20+1)
				wantAbortBlaming(t, mpctest.Run(ss, rule, 1), 2)
			})
		}
	}
}

func TestReshare(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	shares, err := dkls23test.Keygen(2, 3, 10)
	if err != nil {
		t.Fatal(err)
	}
	pub := shares[0].PublicKey()
	// 2-of-3 {1,2,3} → 3-of-4 {2,3,4,5}: dealers 1 and 3, party 1 leaves,
	// 4 and 5 join.
	dealers := []round.PartyID{1, 3}
	newParties := []round.PartyID{2, 3, 4, 5}
	out, departed, err := dkls23test.Reshare(shares, dealers, newParties, 3, 11)
	if err != nil {
		t.Fatal(err)
	}
	checkShares(t, out, 3, pub)
	if len(departed) != 1 || departed[0] != 1 {
		t.Fatalf("departed %v", departed)
	}
	// And back down to 2-of-2.
	out2, _, err := dkls23test.Reshare(out, []round.PartyID{2, 4, 5}, []round.PartyID{4, 5}, 2, 12)
	if err != nil {
		t.Fatal(err)
	}
	checkShares(t, out2, 2, pub)
}

func TestReshareRejectsTooFewDealers(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	shares, err := dkls23test.Keygen(3, 3, 13)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := dkls23test.Reshare(shares, []round.PartyID{1, 2}, []round.PartyID{1, 2}, 2, 14); err == nil {
		t.Fatal("resharing with 2 dealers of a 3-of-3 key succeeded")
	}
}

// A dealer in a resharing that deals a constant other than its
// Lagrange-weighted share (trying to change the key) is named.
func TestReshareWrongConstantBlamesDealer(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	shares, err := dkls23test.Keygen(2, 3, 15)
	if err != nil {
		t.Fatal(err)
	}
	// Party 2 deals from a secret other than its share.
	other, err := curve.RandomScalar(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ps := dkls23test.Parties(3)
	nonce := dkls23test.Nonce()
	var ss []*round.Session
	for _, sh := range shares {
		cfg := keygen.ReshareConfig{Self: sh.Self(), Old: sh, Dealers: ps, NewParties: ps, NewThreshold: 2, Nonce: nonce}
		s, err := keygen.NewReshareSession(cfg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if sh.Self() == 2 {
			// Same session ID, but dealing from another key's share.
			s, err = keygen.TestingOnlyReshareWithSecret(cfg, other, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
		}
		ss = append(ss, s)
	}
	wantAbortBlaming(t, mpctest.Run(ss, nil, 17), 2)
}

// A dealer that reuses an opening (commitment vector and proof of
// knowledge) from another session, its own or another party's, and commits
// to it properly in this session, is caught by the proof of knowledge, which
// is bound to the session and the dealer (TSSHOCK-style replay).
func TestKeygenReplayedProofOfKnowledge(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	ps := dkls23test.Parties(2)
	var rec mpctest.Recorder
	old, err := dkls23test.KeygenSessions(2, ps, dkls23test.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	if err := mpctest.Run(old, rec.Rule(), 1).Err(); err != nil {
		t.Fatal(err)
	}
	for _, victim := range []round.PartyID{2, 1} { // replay own, then party 1's
		var opening []byte
		for _, m := range rec.Seen {
			if m.From == victim && m.Round == 4 && m.IsBroadcast() {
				opening = m.Payload
			}
		}
		f, err := dkls23.SplitFields(opening, 4)
		if err != nil {
			t.Fatal(err)
		}
		nonce := dkls23test.Nonce()
		honest, err := keygen.NewSession(1, ps, 2, nonce, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cheat, err := keygen.TestingOnlyKeygenWithOpening(2, ps, 2, nonce, f, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		res := mpctest.Run([]*round.Session{honest, cheat}, nil, 2)
		wantAbortBlaming(t, res, 2)
		if !errors.Is(res.Errors[1], dlog.ErrInvalidProof) {
			t.Fatalf("replaying %v's opening: %v is not a proof failure", victim, res.Errors[1])
		}
	}
}

// Issue 12: a refresh and a resharing keep the refusals of the old share
// (for peers still in the set), and two key generations with the same
// nonce give shares of different generations (fresh session IDs).
func TestRefusalsSurviveRefreshAndReshare(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	shares, err := dkls23test.Keygen(2, 3, 40)
	if err != nil {
		t.Fatal(err)
	}
	if err := shares[0].Refuse(2); err != nil {
		t.Fatal(err)
	}
	fresh, err := dkls23test.Refresh(shares, 41)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fresh[0].RefusedPeers(), []round.PartyID{2}) || len(fresh[1].RefusedPeers()) != 0 {
		t.Fatalf("after refresh: %v, %v", fresh[0].RefusedPeers(), fresh[1].RefusedPeers())
	}
	moved, _, err := dkls23test.Reshare(fresh, []round.PartyID{1, 3}, []round.PartyID{1, 2, 3, 4}, 2, 42)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(moved[0].RefusedPeers(), []round.PartyID{2}) || len(moved[3].RefusedPeers()) != 0 {
		t.Fatalf("after reshare: %v, %v", moved[0].RefusedPeers(), moved[3].RefusedPeers())
	}
}

func TestRepeatedKeygenNonceGivesNewGeneration(t *testing.T) {
	dkls23test.SkipUnderRace(t)
	ps := dkls23test.Parties(2)
	nonce := dkls23test.Nonce()
	var gens [][dkls23.GenerationLen]byte
	for run := range 2 {
		ss, err := dkls23test.KeygenSessions(2, ps, nonce)
		if err != nil {
			t.Fatal(err)
		}
		shares, err := dkls23test.Shares(mpctest.Run(ss, nil, uint64(run)), ps)
		if err != nil {
			t.Fatal(err)
		}
		if fresh, _ := ss[0].FreshID(); shares[0].Generation() != fresh || fresh == ss[0].ID() {
			t.Fatal("the generation is not the fresh session ID")
		}
		gens = append(gens, shares[0].Generation())
	}
	if gens[0] == gens[1] {
		t.Fatal("a repeated nonce repeated the session")
	}
}
