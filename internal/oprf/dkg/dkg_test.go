package dkg

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/cloudflare/circl/group"
	circloprf "github.com/cloudflare/circl/oprf"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/oprf"
)

func parties(n int) []round.PartyID {
	ps := make([]round.PartyID, n)
	for i := range ps {
		ps[i] = round.PartyID(i + 1)
	}
	return ps
}

func keygen(t *testing.T, n, threshold int, rule mpctest.Rule, seed uint64) *mpctest.Result {
	t.Helper()
	ss, err := NewKeygenSessions(parties(n), threshold)
	if err != nil {
		t.Fatal(err)
	}
	return mpctest.Run(ss, rule, seed)
}

func shares(t *testing.T, res *mpctest.Result) []*oprf.KeyShare {
	t.Helper()
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	out := make([]*oprf.KeyShare, len(res.Outputs))
	for p, o := range res.Outputs {
		out[int(p)-1] = o.(*oprf.KeyShare)
	}
	return out
}

// secret reads k_i from the share's storage encoding (version ‖ id ‖ k_i ‖
// …); only tests look inside a share.
func secret(t testing.TB, s *oprf.KeyShare) group.Scalar {
	t.Helper()
	b, _ := s.MarshalBinary()
	k := group.Ristretto255.NewScalar()
	if err := k.UnmarshalBinary(b[3:35]); err != nil {
		t.Fatal(err)
	}
	return k
}

// combine recovers Σ λ_i·k_i from the given shares (a test-only oracle for
// "the shares summed into one key").
func combine(t testing.TB, set []*oprf.KeyShare) group.Scalar {
	t.Helper()
	k := g.NewScalar()
	for i, si := range set {
		num, den := g.NewScalar().SetUint64(1), g.NewScalar().SetUint64(1)
		xi := g.NewScalar().SetUint64(uint64(si.ID()))
		for j, sj := range set {
			if j == i {
				continue
			}
			xj := g.NewScalar().SetUint64(uint64(sj.ID()))
			num.Mul(num, xj)
			den.Mul(den, g.NewScalar().Sub(xj, xi))
		}
		l := num.Mul(num, den.Inv(den))
		k.Add(k, l.Mul(l, secret(t, si)))
	}
	return k
}

func circlOutput(t testing.TB, k group.Scalar, input []byte) []byte {
	t.Helper()
	b, _ := k.MarshalBinary()
	var sk circloprf.PrivateKey
	if err := sk.UnmarshalBinary(circloprf.SuiteRistretto255, b); err != nil {
		t.Fatal(err)
	}
	out, err := circloprf.NewServer(circloprf.SuiteRistretto255, &sk).FullEvaluate(input)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func subsets(s []*oprf.KeyShare, k int, f func([]*oprf.KeyShare)) {
	var rec func(int, []*oprf.KeyShare)
	rec = func(start int, cur []*oprf.KeyShare) {
		if len(cur) == k {
			f(append([]*oprf.KeyShare(nil), cur...))
			return
		}
		for i := start; i < len(s); i++ {
			rec(i+1, append(cur, s[i]))
		}
	}
	rec(0, nil)
}

func evaluate(t testing.TB, pub *oprf.PublicKey, set []*oprf.KeyShare, input []byte) ([]byte, error) {
	t.Helper()
	st, req, err := oprf.Blind(input)
	if err != nil {
		t.Fatal(err)
	}
	var ps []*oprf.Partial
	for _, s := range set {
		p, err := oprf.Evaluate(s, req)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return st.Finalize(pub, ps)
}

// checkKey asserts that all parties hold shares of one key and that every
// t-subset evaluates to circl's single-server output under the key the
// shares combine to, which every t-subset of secrets agrees on.
func checkKey(t *testing.T, ss []*oprf.KeyShare, input []byte) []byte {
	t.Helper()
	pub := ss[0].Public()
	for i, s := range ss {
		if int(s.ID()) != i+1 || !s.Public().Equal(pub) {
			t.Fatalf("party %d: wrong id or public key", i+1)
		}
	}
	k := combine(t, ss[:pub.Threshold()])
	if !g.NewElement().MulGen(k).IsEqual(pub.Element()) {
		t.Fatal("combined secret does not match the public key")
	}
	want := circlOutput(t, k, input)
	var n int
	subsets(ss, pub.Threshold(), func(set []*oprf.KeyShare) {
		if !combine(t, set).IsEqual(k) {
			t.Fatal("two t-subsets combine to different keys")
		}
		got, err := evaluate(t, pub, set, input)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("subset output %x, circl single-server %x", got, want)
		}
		n++
	})
	if n == 0 {
		t.Fatal("no subsets evaluated")
	}
	return want
}

func TestKeygenMatchesCircl(t *testing.T) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}, {1, 2}, {4, 4}} {
		t.Run(fmt.Sprintf("%d-of-%d", tn[0], tn[1]), func(t *testing.T) {
			res := keygen(t, tn[1], tn[0], nil, uint64(tn[1]))
			if res.Dropped != 0 {
				t.Fatalf("honest run dropped %d messages", res.Dropped)
			}
			checkKey(t, shares(t, res), []byte("alice"))
		})
	}
}

func TestKeygenFreshKeys(t *testing.T) {
	a := shares(t, keygen(t, 3, 2, nil, 1))
	b := shares(t, keygen(t, 3, 2, nil, 1))
	if a[0].Public().Element().IsEqual(b[0].Public().Element()) {
		t.Fatal("two runs made the same key")
	}
}

func refresh(t *testing.T, old []*oprf.KeyShare, rule mpctest.Rule, seed uint64) *mpctest.Result {
	t.Helper()
	ss, err := NewRefreshSessions(old)
	if err != nil {
		t.Fatal(err)
	}
	return mpctest.Run(ss, rule, seed)
}

func TestRefresh(t *testing.T) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}, {1, 3}} {
		t.Run(fmt.Sprintf("%d-of-%d", tn[0], tn[1]), func(t *testing.T) {
			old := shares(t, keygen(t, tn[1], tn[0], nil, 2))
			before := checkKey(t, old, []byte("bob"))
			res := refresh(t, old, nil, 3)
			if res.Dropped != 0 {
				t.Fatalf("honest refresh dropped %d messages", res.Dropped)
			}
			fresh := shares(t, res)
			if after := checkKey(t, fresh, []byte("bob")); !bytes.Equal(before, after) {
				t.Fatal("refresh changed the OPRF output")
			}
			op, np := old[0].Public(), fresh[0].Public()
			if !op.Element().IsEqual(np.Element()) {
				t.Fatal("refresh changed the public key")
			}
			if tn[0] == 1 {
				return // a 1-of-n share is the key itself; nothing to refresh
			}
			for i := range old {
				if old[i].Equal(fresh[i]) {
					t.Fatalf("share %d unchanged by refresh", i+1)
				}
				a, _ := op.Share(old[i].ID())
				b, _ := np.Share(fresh[i].ID())
				if a.IsEqual(b) {
					t.Fatalf("verification share %d unchanged by refresh", i+1)
				}
			}
			// Old and new shares do not combine: one old share among t−1
			// new ones gives another key, and the client names the node.
			mixed := append([]*oprf.KeyShare{old[0]}, fresh[1:tn[0]]...)
			k := combine(t, fresh[:tn[0]])
			if combine(t, mixed).IsEqual(k) {
				t.Fatal("old and new shares combine to the key")
			}
			_, err := evaluate(t, np, mixed, []byte("bob"))
			var ne *oprf.NodeError
			if !errors.As(err, &ne) || len(ne.Nodes) != 1 || ne.Nodes[0] != 1 {
				t.Fatalf("old share under the new key: %v, want NodeError naming node 1", err)
			}
			// And the old public key rejects the new shares.
			_, err = evaluate(t, op, mixed, []byte("bob"))
			if !errors.As(err, &ne) || fmt.Sprint(ne.Nodes) != fmt.Sprint(ids(mixed[1:])) {
				t.Fatalf("new shares under the old key: %v", err)
			}
		})
	}
}

func ids(s []*oprf.KeyShare) []uint16 {
	var out []uint16
	for _, x := range s {
		out = append(out, x.ID())
	}
	return out
}

// wantAbort asserts that nobody output a key and that every party in
// accusers aborted blaming exactly culprit.
func wantAbort(t *testing.T, res *mpctest.Result, culprit round.PartyID, accusers ...round.PartyID) {
	t.Helper()
	if len(res.Outputs) != 0 {
		t.Fatalf("%d parties output a key despite misbehaviour by %v", len(res.Outputs), culprit)
	}
	for _, p := range accusers {
		var ae *round.AbortError
		if !errors.As(res.Errors[p], &ae) {
			t.Fatalf("%v: %v, want an abort", p, res.Errors[p])
		}
		if !ae.Blames(culprit) || len(ae.Culprits) != 1 {
			t.Fatalf("%v: %v, want blame on exactly %v", p, ae, culprit)
		}
	}
}

func TestAlteredShareBlamesDealer(t *testing.T) {
	// Party 2's share for party 1 is altered; the bit is in the low byte, so
	// the scalar stays canonical and the commitment check is what fails.
	rule := mpctest.FlipBit(mpctest.Match{From: 2, To: 1, Round: 4, Direct: mpctest.Ptr(true)}, 8)
	res := keygen(t, 3, 2, rule, 4)
	wantAbort(t, res, 2, 1)
	if err := res.Errors[1]; !bytes.Contains([]byte(err.Error()), []byte("does not match its commitments")) {
		t.Fatalf("party 1: %v", err)
	}
}

func TestAlteredRefreshShareBlamesDealer(t *testing.T) {
	old := shares(t, keygen(t, 5, 3, nil, 5))
	rule := mpctest.FlipBit(mpctest.Match{From: 4, To: 2, Round: 4, Direct: mpctest.Ptr(true)}, 8)
	wantAbort(t, refresh(t, old, rule, 6), 4, 2)
}

func TestBadProofOfKnowledgeBlamesDealer(t *testing.T) {
	// Flip the lowest bit of μ, the last scalar of party 2's round-1
	// broadcast, towards every party.
	n, threshold := 3, 2
	bit := 8 * (commitMsgLen(threshold, false) - scalarLen)
	rule := mpctest.FlipBit(mpctest.Match{From: 2, Round: 3}, bit)
	res := keygen(t, n, threshold, rule, 7)
	wantAbort(t, res, 2, 1, 3)
	if err := res.Errors[1]; !bytes.Contains([]byte(err.Error()), []byte("proof of knowledge")) {
		t.Fatalf("party 1: %v", err)
	}
}

func TestRogueCommitmentWithoutProofBlamesDealer(t *testing.T) {
	// Party 3 replaces its constant-term commitment (e.g. to cancel another
	// party's) but cannot prove knowledge of its discrete log.
	// Every party gets the same replacement, so the echo check passes and
	// the proof of knowledge is what fails.
	rogue := appendElement(nil, g.NewElement().MulGen(g.RandomNonZeroScalar(rand.Reader)))
	rule := mpctest.Alter(mpctest.Match{From: 3, Round: 3}, func(m *round.Message) {
		copy(m.Payload[1:33], rogue)
	})
	res := keygen(t, 3, 2, rule, 8)
	wantAbort(t, res, 3, 1, 2)
	for _, p := range []round.PartyID{1, 2} {
		if err := res.Errors[p]; !bytes.Contains([]byte(err.Error()), []byte("proof of knowledge")) {
			t.Fatalf("%v: %v", p, err)
		}
	}
}

func TestInconsistentCommitmentsBlameBroadcaster(t *testing.T) {
	// Party 1 broadcasts valid commitments with a valid proof to party 2,
	// and different valid commitments with a valid proof to party 3: each
	// message alone verifies, and only the echo check reveals the split.
	for _, refreshing := range []bool{false, true} {
		t.Run(fmt.Sprintf("refresh=%v", refreshing), func(t *testing.T) {
			var (
				ss    []*round.Session
				err   error
				other []byte
			)
			if refreshing {
				ss, err = NewRefreshSessions(shares(t, keygen(t, 3, 2, nil, 9)))
			} else {
				ss, err = NewKeygenSessions(parties(3), 2)
			}
			if err != nil {
				t.Fatal(err)
			}
			rule := func(to round.PartyID, m *round.Message) []*round.Message {
				if m.From == 1 && to == 3 && m.Round == 3 {
					if other == nil {
						// Bound to sid*, which party 1 knows by now.
						fresh, ok := ss[0].FreshID()
						if !ok {
							t.Fatal("no fresh session ID at party 1")
						}
						other = forgeCommitments(t, fresh, refreshing)
					}
					m.Payload = bytes.Clone(other)
				}
				return []*round.Message{m}
			}
			res := mpctest.Run(ss, rule, 11)
			// Nobody outputs; nobody but party 1 is blamed (party 3 names
			// it on its own echo, party 2 cannot tell who lies).
			if err := mpctest.CheckBlame(res, 1, false); err != nil {
				t.Fatal(err)
			}
			if len(res.Errors) < 2 {
				t.Fatalf("errors %v", res.Errors)
			}
		})
	}
}

// forgeCommitments makes a second, self-consistent round-1 broadcast for
// party 1 of a 2-of-3 run.
func forgeCommitments(t *testing.T, sid round.SessionID, refreshing bool) []byte {
	t.Helper()
	cfg := &config{sid: sid, self: 1, parties: parties(3), t: 2}
	a := []group.Scalar{g.RandomNonZeroScalar(rand.Reader), g.RandomNonZeroScalar(rand.Reader)}
	if refreshing {
		cfg.old = &oprf.KeyShare{} // only its presence matters to commit
		a[0].SetUint64(0)
	}
	return (&round1{config: cfg}).commit(a).marshal()
}

func TestWrongConfirmationBlamesSender(t *testing.T) {
	rule := mpctest.FlipBit(mpctest.Match{From: 3, Round: 5}, 0)
	res := keygen(t, 3, 2, rule, 12)
	for _, p := range []round.PartyID{1, 2} {
		var ae *round.AbortError
		if !errors.As(res.Errors[p], &ae) || !ae.Blames(3) || len(ae.Culprits) != 1 {
			t.Fatalf("%v: %v, want abort blaming party 3", p, res.Errors[p])
		}
		if _, ok := res.Outputs[p]; ok {
			t.Fatalf("%v output a key", p)
		}
	}
}

func TestDroppedShareStallsEveryone(t *testing.T) {
	// Without party 2's share, party 1 cannot finish and sends no
	// confirmation: no party outputs a key.
	res := keygen(t, 3, 2, mpctest.Drop(mpctest.Match{From: 2, To: 1, Round: 4}), 13)
	if len(res.Outputs) != 0 {
		t.Fatalf("%d parties output a key", len(res.Outputs))
	}
	var se *mpctest.StallError
	if !errors.As(res.Errors[1], &se) || fmt.Sprint(se.Waiting) != "[party 2]" {
		t.Fatalf("party 1: %v, want stall waiting for party 2", res.Errors[1])
	}
}

func TestConfigErrors(t *testing.T) {
	sid := round.SessionID{}
	if _, err := NewKeygen(sid, 4, parties(3), 2); err == nil {
		t.Error("party outside the set accepted")
	}
	if _, err := NewKeygen(sid, 1, parties(3), 4); err == nil {
		t.Error("threshold above n accepted")
	}
	if _, err := NewKeygen(sid, 1, parties(3), 0); err == nil {
		t.Error("threshold 0 accepted")
	}
	if _, err := NewKeygen(sid, 1, parties(oprf.MaxNodes+1), 2); err == nil {
		t.Error("more than MaxNodes parties accepted")
	}
	if _, err := NewRefresh(sid, nil); err == nil {
		t.Error("nil share accepted")
	}
}

// Issue 12: two key generations under the same base session ID (a nonce
// repeated by the coordinator) run under different fresh session IDs, so
// no party repeats a proof or a dealing under one ID.
func TestRepeatedNonceGetsFreshSessionID(t *testing.T) {
	ps := parties(3)
	sid, err := KeygenSessionID(ps, 2, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	var ids []round.SessionID
	for run := range 2 {
		var ss []*round.Session
		for _, p := range ps {
			r, err := NewKeygen(sid, p, ps, 2)
			if err != nil {
				t.Fatal(err)
			}
			s, err := round.NewSession(sid, p, ps, r)
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, s)
		}
		if err := mpctest.Run(ss, nil, uint64(run)).Err(); err != nil {
			t.Fatal(err)
		}
		id, ok := ss[0].FreshID()
		if !ok || id == sid {
			t.Fatal("no fresh session ID")
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Fatal("a repeated nonce repeated the session ID")
	}
}
