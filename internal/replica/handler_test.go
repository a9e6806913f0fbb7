package replica

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/transport"
)

// noPeers is a Transport whose peers are all unreachable: the handler
// fuzz tests below run one replica alone (the cluster tests use the real
// transport).
type noPeers struct{}

func (noPeers) Call(context.Context, uint16, string, []byte) ([]byte, error) {
	return nil, errors.New("no peers in this test")
}
func (noPeers) Handle(string, transport.Handler) {}
func (noPeers) Peers() []transport.PeerStatus    { return nil }

// lone returns a replica of node 1 of a 3-node cluster on a real SQLite
// store, with the test's signed-record Applier, and the signing key.
func lone(t testing.TB) (*Replica, ed25519.PrivateKey) {
	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: 3, Threshold: 2, Out: dir, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "fuzz.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	r, err := New(Options{Transport: noPeers{}, Store: st, Config: cfgs[0], Applier: signedApplier{pub}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, priv
}

// FuzzHandlePush: whatever a peer pushes, the replica either acknowledges
// a record that its Applier accepts (and stores it once) or refuses it and
// stores nothing.
func FuzzHandlePush(f *testing.F) {
	r, priv := lone(f)
	sign := func(p string) []byte { return append(ed25519.Sign(priv, []byte(p)), p...) }
	f.Add(encodePush(sign("a=1")))
	f.Add(encodePush(sign("b=1^a")))
	f.Add(encodePush(sign("c=1^nothing")))
	f.Add(encodePush(append(make([]byte, 64), "x=1"...)))
	f.Add([]byte{wireVersion})
	f.Add([]byte{})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, body []byte) {
		before, err := r.st.Records(ctx, LogStream, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := r.handlePush(ctx, 2, body)
		after, err2 := r.st.Records(ctx, LogStream, 0, 0)
		if err2 != nil {
			t.Fatal(err2)
		}
		if err != nil {
			if len(after) != len(before) {
				t.Fatalf("refused push %x changed the log", body)
			}
			return
		}
		rec, derr := decodePush(body)
		if derr != nil {
			t.Fatalf("acknowledged an undecodable push %x", body)
		}
		if id, aerr := decodeAck(resp); aerr != nil || id != RecordID(rec) {
			t.Fatalf("bad ack %x", resp)
		}
		if ok, _ := r.Has(ctx, RecordID(rec)); !ok {
			t.Fatal("acknowledged but not stored")
		}
		if len(after) > len(before)+1 {
			t.Fatal("one push stored several records")
		}
	})
}

// FuzzHandlePull: any request gets an error or a well-formed batch.
func FuzzHandlePull(f *testing.F) {
	r, priv := lone(f)
	for _, p := range []string{"a=1", "b=2", "c=3"} {
		rec := append(ed25519.Sign(priv, []byte(p)), p...)
		if _, err := r.apply(context.Background(), rec, nil); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(encodePull(0, 2))
	f.Add(encodePull(1, MaxBatch))
	f.Add(encodePull(0, 0))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := r.handlePull(context.Background(), 2, body)
		if err != nil {
			return
		}
		after, limit, derr := decodePull(body)
		if derr != nil {
			t.Fatalf("answered an undecodable pull %x", body)
		}
		if _, err := decodeBatch(resp, after, limit); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
	})
}
