package node

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/transport"
)

// TestReplicaWired: every node has a replica whose Applier is auth's, so a
// record auth does not accept is refused locally and by the peers.
func TestReplicaWired(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	for i, n := range tc.nodes {
		if n.Replica() == nil {
			t.Fatalf("node %d has no replica", i+1)
		}
		if n.Replica().Quorum() != 2 {
			t.Fatalf("node %d: quorum %d, want 2", i+1, n.Replica().Quorum())
		}
	}
	junk := []byte("not an auth record")
	if err := tc.nodes[0].Replica().Submit(ctx, junk); !errors.Is(err, replica.ErrInvalid) {
		t.Fatalf("Submit of junk: %v", err)
	}
	// Pushed straight over the transport (as a lying node would), the
	// peer runs auth's checks itself and refuses it.
	_, err := tc.nodes[0].Transport().Call(ctx, 2, "replica.push", append([]byte{1}, junk...))
	var re *transport.RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") {
		t.Fatalf("push of junk to node 2: %v", err)
	}
	ok, err := tc.nodes[1].Replica().Has(ctx, replica.RecordID(junk))
	if err != nil || ok {
		t.Fatalf("node 2 stored junk: %v %v", ok, err)
	}
}
