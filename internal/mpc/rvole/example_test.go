package rvole_test

import (
	"crypto/rand"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/keymesh/keymesh/internal/mpc/rvole"
)

// Example runs the pairwise setup once and one multiplication of Alice's
// vector a = (3, 5) by Bob's β = 7.
func Example() {
	// Setup, once per ordered pair: Bob → Alice, Alice → Bob.
	bobState, setup1, err := rvole.SetupBob([]byte("key 1, pair 2→1"), rand.Reader)
	if err != nil {
		panic(err)
	}
	alice, setup2, err := rvole.SetupAlice([]byte("key 1, pair 2→1"), setup1, rand.Reader)
	if err != nil {
		panic(err)
	}
	bob, err := bobState.Finish(setup2)
	if err != nil {
		panic(err)
	}

	// One multiplication: Bob → Alice, Alice → Bob.
	sid := []byte("signing session 42, pair 2→1, key 1")
	var beta secp256k1.ModNScalar
	beta.SetInt(7)
	a := make([]secp256k1.ModNScalar, 2)
	a[0].SetInt(3)
	a[1].SetInt(5)
	mul, msg1, err := bob.Start(sid, &beta, rand.Reader)
	if err != nil {
		panic(err)
	}
	c, msg2, err := alice.Multiply(sid, a, msg1, rand.Reader)
	if err != nil {
		panic(err)
	}
	d, err := mul.Finish(msg2)
	if err != nil {
		panic(err)
	}
	for k := range a {
		var sum secp256k1.ModNScalar
		sum.Add2(&c[k], &d[k])
		b := sum.Bytes()
		fmt.Println("c + d =", b[31])
	}
	fmt.Println("message sizes:", len(msg1), len(msg2))
	// Output:
	// c + d = 21
	// c + d = 35
	// message sizes: 12337 40002
}
