package sign_test

import (
	"sync"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

var (
	fuzzOnce   sync.Once
	fuzzShares []*dkls23.Share
)

// FuzzSignMessages feeds arbitrary payloads, in place of party 2's message
// of any round, to party 1's signing session: the decoders and checks must
// never panic, and party 1 must never output a signature that does not
// verify.
func FuzzSignMessages(f *testing.F) {
	dkls23test.SkipUnderRace(f)
	f.Add(uint8(0), false, make([]byte, 32))
	f.Add(uint8(1), false, dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(nil, make([]byte, 33)), make([]byte, 32)), make([]byte, 33)))
	f.Add(uint8(1), true, dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(nil, make([]byte, 33)), make([]byte, 33)), make([]byte, 32)), []byte{1, 2, 3}))
	f.Add(uint8(2), false, dkls23.AppendField(dkls23.AppendField(nil, make([]byte, 32)), make([]byte, 32)))
	f.Add(uint8(0), true, []byte{0})
	f.Fuzz(func(t *testing.T, rnd uint8, direct bool, payload []byte) {
		fuzzOnce.Do(func() {
			var err error
			if fuzzShares, err = dkls23test.Keygen(2, 2, 1); err != nil {
				panic(err)
			}
		})
		digest := make([]byte, 32)
		rule := mpctest.Alter(mpctest.Match{From: 2, Round: 3 + uint16(rnd%3), Direct: mpctest.Ptr(direct)}, func(m *round.Message) {
			m.Payload = payload
		})
		// Copies: a caught cheater is refused on the share.
		_, res, _ := dkls23test.Sign(cloneShares(t, fuzzShares), []round.PartyID{1, 2}, digest, rule, 1)
		if sig, ok := res.Outputs[1].(*dkls23.Signature); ok {
			if err := sig.Verify(fuzzShares[0].PublicKey(), digest); err != nil {
				t.Fatalf("party 1 output an invalid signature: %v", err)
			}
		}
	})
}
