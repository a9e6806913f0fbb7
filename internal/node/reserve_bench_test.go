package node

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/auth"
	"github.com/keymesh/keymesh/internal/wallet"
)

// BenchmarkSignShapes is one personal_sign at a time through real nodes
// (requests spread over the gateways), on 3 nodes with t = 2 (the signers
// are the nonce quorum: no reservation) and on 4 and 5 nodes with t = 2
// (one and two holders reserve the nonce, in parallel, before the
// co-signer is invited). The approvals are made before the timer starts.
//
//	go test -run '^$' -bench BenchmarkSignShapes -benchtime 200x -count 3 ./internal/node
func BenchmarkSignShapes(b *testing.B) {
	for _, shape := range []struct{ n, t int }{{3, 2}, {4, 2}, {5, 2}} {
		b.Run(fmt.Sprintf("%dof%d", shape.t, shape.n), func(b *testing.B) {
			clients, _, u, addr := benchWalletShape(b, shape.n, shape.t)
			ctx := context.Background()
			params, proofs := make([][]any, b.N), make([]string, b.N)
			for i := range b.N {
				msg := binary.BigEndian.AppendUint64([]byte("bench "), uint64(time.Now().UnixNano()))
				params[i] = []any{hexutil.Encode(msg), addr.Hex()}
				proofs[i] = u.approveParams(b, api.MethodPersonalSign, params[i])
			}
			b.ResetTimer()
			for i := range b.N {
				if err := clients[i%shape.n].Call(client.WithProofs(ctx, proofs[i]), api.MethodPersonalSign, params[i], nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReservation is one nonce reservation as the gateway sends it:
// an auth.KindReserve call from node 1 to node 3 over the peer transport
// (mutual TLS on 127.0.0.1), which runs Authorize on a fresh user-key
// approval and records its nonce in SQLite. On n ≥ 2t the gateway sends
// n−2t+1 of them in parallel before inviting its co-signers: this is the
// latency it adds.
//
//	go test -run '^$' -bench BenchmarkReservation -benchtime 500x -count 3 ./internal/node
func BenchmarkReservation(b *testing.B) {
	_, nodes, u, addr := benchWalletShape(b, 4, 2)
	ctx := context.Background()
	bodies := make([][]byte, b.N)
	for i := range b.N {
		msg := binary.BigEndian.AppendUint64([]byte("bench "), uint64(i))
		params := []any{hexutil.Encode(msg), addr.Hex()}
		raw, _ := jsonMarshal(params)
		p, err := wallet.Prepare(api.MethodPersonalSign, raw, nil)
		if err != nil {
			b.Fatal(err)
		}
		op := auth.Operation{Scope: u.scope, Account: u.account, Method: api.MethodPersonalSign, Hash: p.Hash()}
		binary.BigEndian.PutUint64(op.Request[:], uint64(i))
		bodies[i] = auth.EncodeReservation(op, u.approve(b, api.MethodPersonalSign, p.Address, p.Digest))
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := nodes[0].Transport().Call(ctx, 3, auth.KindReserve, bodies[i]); err != nil {
			b.Fatal(err)
		}
	}
}
