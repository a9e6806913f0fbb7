package sign_test

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/keymesh/keymesh/internal/mpc/dkls23"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/keygen"
	"github.com/keymesh/keymesh/internal/mpc/dkls23/sign"
	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
)

// A 2-of-3 key generation and a signature by parties 1 and 3, all in one
// process; in the node each party runs its own session and the transport
// carries the messages.
func Example() {
	parties := []round.PartyID{1, 2, 3}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	var kg []*round.Session
	for _, p := range parties {
		s, err := keygen.NewSession(p, parties, 2, nonce, rand.Reader)
		if err != nil {
			panic(err)
		}
		kg = append(kg, s)
	}
	res := mpctest.Run(kg, nil, 1)
	if err := res.Err(); err != nil {
		panic(err)
	}
	share1 := res.Outputs[1].(*dkls23.Share)
	share3 := res.Outputs[3].(*dkls23.Share)

	digest := crypto.Keccak256([]byte("hello keymesh"))
	signers := []round.PartyID{1, 3}
	rand.Read(nonce) // a fresh nonce for every signature
	var ss []*round.Session
	for _, sh := range []*dkls23.Share{share1, share3} {
		s, err := sign.NewSession(sh, signers, digest, nonce, rand.Reader)
		if err != nil {
			panic(err)
		}
		ss = append(ss, s)
	}
	res = mpctest.Run(ss, nil, 2)
	if err := res.Err(); err != nil {
		panic(err)
	}
	sig := res.Outputs[1].(*dkls23.Signature)

	pub, err := crypto.SigToPub(digest, sig.Ethereum())
	if err != nil {
		panic(err)
	}
	want, _ := crypto.DecompressPubkey(share1.PublicKeyBytes())
	fmt.Println("signature bytes:", len(sig.Ethereum()))
	fmt.Println("ecrecover gives the key's address:", bytes.Equal(crypto.PubkeyToAddress(*pub).Bytes(), crypto.PubkeyToAddress(*want).Bytes()))
	// Output:
	// signature bytes: 65
	// ecrecover gives the key's address: true
}
