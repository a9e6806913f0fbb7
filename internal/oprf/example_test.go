package oprf_test

import (
	"bytes"
	"fmt"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/oprf"
	"github.com/keymesh/keymesh/internal/oprf/dkg"
)

// A 2-of-3 key is generated without a dealer; a client then gets the same
// pseudonym for one person from two different pairs of nodes, and a
// different one in another scope.
func Example() {
	sessions, _ := dkg.NewKeygenSessions([]round.PartyID{1, 2, 3}, 2)
	res := mpctest.Run(sessions, nil, 1) // in production, the node transport moves the messages
	node := map[uint16]*oprf.KeyShare{}
	for p, out := range res.Outputs {
		node[uint16(p)] = out.(*oprf.KeyShare)
	}
	pub := node[1].Public()

	uid := func(scope string, nodes ...uint16) []byte {
		st, req, err := oprf.BlindScoped(scope, []byte("passport:X1234567"))
		if err != nil {
			panic(err)
		}
		var partials []*oprf.Partial
		for _, id := range nodes {
			p, err := oprf.Evaluate(node[id], req) // on node id; it sees only req
			if err != nil {
				panic(err)
			}
			partials = append(partials, p)
		}
		out, err := st.Finalize(pub, partials)
		if err != nil {
			panic(err)
		}
		return out
	}
	a, b := uid("vote-2026", 1, 2), uid("vote-2026", 2, 3)
	c := uid("airdrop", 1, 3)
	fmt.Println(len(a), bytes.Equal(a, b), bytes.Equal(a, c))

	// One node is not enough.
	st, req, _ := oprf.Blind([]byte("x"))
	p, _ := oprf.Evaluate(node[1], req)
	_, err := st.Finalize(pub, []*oprf.Partial{p})
	fmt.Println(err)
	// Output:
	// 64 true false
	// oprf: fewer partial evaluations than the threshold: 1 of 2
}
