package node

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
)

// benchWallet starts a 3-node, threshold-2 cluster of real nodes on
// 127.0.0.1 (plaintext API, as keymesh dev), a user-mode scope with one
// user, and a wallet account for her.
func benchWallet(b *testing.B) ([]*client.Client, *walletUser, common.Address) {
	clients, _, u, addr := benchWalletShape(b, 3, 2)
	return clients, u, addr
}

// benchWalletShape is benchWallet with nodes nodes and threshold threshold;
// it also returns the nodes.
func benchWalletShape(b *testing.B, nodes, threshold int) ([]*client.Client, []*Node, *walletUser, common.Address) {
	b.Helper()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: nodes, Threshold: threshold, Out: b.TempDir(), BasePort: 1, SkipPortCheck: true})
	if err != nil {
		b.Fatal(err)
	}
	apiLns, peerLns := make([]net.Listener, nodes), make([]net.Listener, nodes)
	for i := range cfgs {
		apiLns[i], peerLns[i] = benchListen(b), benchListen(b)
	}
	for i, c := range cfgs {
		c.APIListen, c.PeerListen = apiLns[i].Addr().String(), peerLns[i].Addr().String()
		for j := range c.Peers {
			p := &c.Peers[j]
			p.PeerAddr = peerLns[p.ID-1].Addr().String()
			p.APIURL = "http://" + apiLns[p.ID-1].Addr().String()
		}
	}
	clients := make([]*client.Client, nodes)
	var started []*Node
	for i, cfg := range cfgs {
		n, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			APIListener: apiLns[i], PeerListener: peerLns[i], AllowPlaintext: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		b.Cleanup(func() { cancel(); <-done })
		if clients[i], err = client.New(n.APIURL()); err != nil {
			b.Fatal(err)
		}
		started = append(started, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range started { // key generation needs all of them
		for n.Ready().Reachable < nodes && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_, users := newWalletScope(b, clients, "bench")
	u := users[0]
	var created api.CreateAccountResult
	ctx := context.Background()
	proofs := u.approve(b, api.MethodCreateAccount, common.Address{}, [32]byte{})
	if err := clients[0].Call(client.WithProofs(ctx, proofs), api.MethodCreateAccount, api.CreateAccountParams{Scope: u.scope, Account: u.account}, &created); err != nil {
		b.Fatal(err)
	}
	return clients, started, u, common.HexToAddress(created.Address)
}

// BenchmarkWalletSign is one personal_sign request through real nodes with
// real auth (a user-key approval checked by the gateway and the co-signer,
// nonces recorded in each one's store), requests spread over the 3 nodes.
// The approvals are made before the timer starts (client work). "serial"
// sends one request at a time (latency); "c16" keeps 16 in flight
// (throughput, sig/s).
//
//	go test -run '^$' -bench BenchmarkWalletSign -benchtime 300x ./internal/node
func BenchmarkWalletSign(b *testing.B) {
	clients, u, addr := benchWallet(b)
	ctx := context.Background()
	prepare := func(n int) ([][]any, []string) {
		params, proofs := make([][]any, n), make([]string, n)
		for i := range n {
			msg := binary.BigEndian.AppendUint64([]byte("bench "), uint64(time.Now().UnixNano()))
			params[i] = []any{hexutil.Encode(msg), addr.Hex()}
			proofs[i] = u.approveParams(b, api.MethodPersonalSign, params[i])
		}
		return params, proofs
	}
	b.Run("serial", func(b *testing.B) {
		params, proofs := prepare(b.N)
		b.ResetTimer()
		for i := range b.N {
			if err := clients[i%3].Call(client.WithProofs(ctx, proofs[i]), api.MethodPersonalSign, params[i], nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("c16", func(b *testing.B) {
		params, proofs := prepare(b.N)
		var next atomic.Int64
		b.SetParallelism(8) // × GOMAXPROCS = 16 on 2 cores
		t0 := time.Now()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(next.Add(1) - 1)
				if err := clients[i%3].Call(client.WithProofs(ctx, proofs[i]), api.MethodPersonalSign, params[i], nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "sig/s")
	})
}
