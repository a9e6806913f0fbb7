package keygen_test

import (
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/dkls23test"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// FuzzKeygenMessages feeds arbitrary payloads, in place of party 2's message
// of any round, to party 1's key generation: the decoders and checks must
// never panic, and any share party 1 outputs must be a valid share record.
func FuzzKeygenMessages(f *testing.F) {
	dkls23test.SkipUnderRace(f)
	f.Add(uint8(0), false, make([]byte, 32))
	f.Add(uint8(0), true, dkls23.AppendField(dkls23.AppendField(nil, make([]byte, 32)), []byte{1}))
	f.Add(uint8(1), false, dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(dkls23.AppendField(nil, make([]byte, 32)), make([]byte, 33)), make([]byte, 33)), make([]byte, 65)))
	f.Add(uint8(1), true, dkls23.AppendField(dkls23.AppendField(nil, make([]byte, 32)), []byte{1}))
	f.Add(uint8(2), false, make([]byte, 32))
	f.Add(uint8(2), true, make([]byte, 32))
	f.Fuzz(func(t *testing.T, rnd uint8, direct bool, payload []byte) {
		ps := dkls23test.Parties(2)
		ss, err := dkls23test.KeygenSessions(2, ps, make([]byte, 16))
		if err != nil {
			t.Fatal(err)
		}
		rule := mpctest.Alter(mpctest.Match{From: 2, Round: 3 + uint16(rnd%3), Direct: mpctest.Ptr(direct)}, func(m *round.Message) {
			m.Payload = payload
		})
		res := mpctest.Run(ss, rule, 1)
		if s, ok := res.Outputs[1].(*dkls23.Share); ok {
			b, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var again dkls23.Share
			if err := again.UnmarshalBinary(b); err != nil {
				t.Fatalf("party 1 output an invalid share: %v", err)
			}
		}
	})
}
