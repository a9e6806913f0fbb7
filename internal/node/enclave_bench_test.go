package node

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
)

// BenchmarkNodeCall measures one keymesh_nodeInfo call through a real node
// on 127.0.0.1 (HTTP, JSON-RPC, the handler), plaintext and sealed in each
// mode: the difference is the cost of sealing (client) and opening (node)
// the request and the response, plus the nonce write to the store.
//
//	go test -run '^$' -bench BenchmarkNodeCall -benchtime 2s ./internal/node
func BenchmarkNodeCall(b *testing.B) {
	for _, kem := range []string{config.KEMXWing, config.KEMX25519} {
		cfgs, err := config.InitCluster(config.InitOptions{Nodes: 2, Threshold: 2, Out: b.TempDir(), BasePort: 1, SkipPortCheck: true})
		if err != nil {
			b.Fatal(err)
		}
		cfgs[0].RequestKEM = kem
		n, err := New(Options{Config: cfgs[0], Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			APIListener: benchListen(b), PeerListener: benchListen(b), AllowPlaintext: true})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		m := n.Enclave().Measurement().String()
		modes := []struct {
			name string
			opts []client.Option
		}{
			{"hpke-" + kem, []client.Option{client.WithAttestation(client.Attestation{Measurements: []string{m}, AllowSimulated: true, SimPlatformKeys: []string{simRoot(n)}, MinKEM: kem, Warn: func(string) {}})}},
		}
		if kem == config.KEMXWing {
			modes = append([]struct {
				name string
				opts []client.Option
			}{{"plaintext", nil}}, modes...)
			modes = append(modes, struct {
				name string
				opts []client.Option
			}{"compat-rsa3072", []client.Option{client.WithAttestation(client.Attestation{Measurements: []string{m}, AllowSimulated: true, SimPlatformKeys: []string{simRoot(n)}, Compat: true, Warn: func(string) {}})}})
		}
		for _, mode := range modes {
			b.Run(mode.name, func(b *testing.B) {
				c, err := client.New(n.APIURL(), mode.opts...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.NodeInfo(ctx); err != nil { // attest outside the timing
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					if _, err := c.NodeInfo(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		cancel()
		<-done
	}
}

func benchListen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// BenchmarkStoreNonces measures recording one request nonce (memory check
// and the SQLite write), part of every sealed call.
func BenchmarkStoreNonces(b *testing.B) {
	ctx := context.Background()
	st, err := openStore(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := loadNonces(ctx, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	var nonce [16]byte
	i := 0
	for b.Loop() {
		i++
		binary.BigEndian.PutUint64(nonce[:], uint64(i))
		if seen, err := s.Seen(ctx, nonce[:], exp); seen || err != nil {
			b.Fatal(seen, err)
		}
	}
}
