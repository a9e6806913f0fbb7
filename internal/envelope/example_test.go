package envelope_test

import (
	"context"
	"crypto/hpke"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/envelope"
)

// A client seals a JSON-RPC call to the node's attested HPKE key; the node
// opens it, checks it was sealed for the method it dispatches, and seals the
// result back.
func Example() {
	// Node: its key (in a node, enclave.LoadOrCreateKey) and an opener.
	nodeKey, _ := hpke.MLKEM768X25519().GenerateKey()
	opener, _ := envelope.NewOpener(&envelope.MemoryNonceStore{}, 0, nil, nodeKey)

	// Client: the public key comes from a verified attestation (package attest).
	pk, _ := envelope.ParsePublicKey(envelope.KEMXWing, nodeKey.PublicKey().Bytes())
	env, pending, _ := envelope.SealRequest(pk, envelope.Request{
		Method: "personal_sign", Scope: "app-1",
		Body: []byte(`{"jsonrpc":"2.0","method":"personal_sign","params":["0x68656c6c6f","0xabc"],"id":1}`),
	}, time.Now())

	// Node.
	req, err := opener.Open(context.Background(), env)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(req.Method, req.Scope, req.Check("personal_sign", "app-1") == nil)
	resp, _ := req.SealResponse([]byte(`{"jsonrpc":"2.0","result":"0x…","id":1}`))

	// A replay of the same envelope is refused.
	_, err = opener.Open(context.Background(), env)
	fmt.Println(err)

	// Client.
	body, _ := pending.OpenResponse(resp)
	fmt.Println(string(body))
	// Output:
	// personal_sign app-1 true
	// envelope: replayed request
	// {"jsonrpc":"2.0","result":"0x…","id":1}
}
