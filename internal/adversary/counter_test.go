//go:build keymesh_adversary

package adversary

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/counter"
	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/replica"
	"github.com/keymesh/keymesh/internal/transport"
)

// TestCounterDemo runs the demo service of the node's seam
// (internal/counter, docs/services.md) on a real 3-node cluster: a
// counter.add record written through node 1's API is replicated to every
// node, each node reads its peers' values over the counter's peer RPC,
// and node 3, played as a malicious node, cannot make the honest nodes
// store an invalid counter.add, neither by pushing it nor by serving it in
// catch-up.
func TestCounterDemo(t *testing.T) {
	c := NewCluster(t, Options{Demo: true})
	ctx := context.Background()
	key, err := client.GenerateKey("p256")
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Client(1).CounterAdd(ctx, key, "visits", 3)
	if err != nil || v.Value != 3 {
		t.Fatalf("CounterAdd: %+v %v", v, err)
	}
	waitCounter(t, c, "visits", 3, 1, 2, 3)

	// Node 2 asks its peers over counter/get/v1.
	got, err := c.Client(2).CounterGet(ctx, "visits")
	if err != nil || got.Value != 3 || fmt.Sprint(got.Peers) != "[{1 3 } {3 3 }]" {
		t.Fatalf("CounterGet on node 2: %+v %v", got, err)
	}

	// The API refuses an invalid record before it is submitted.
	signer, err := record.GenerateKey(record.P256)
	if err != nil {
		t.Fatal(err)
	}
	over := signed(t, signer, &api.CounterAdd{Counter: "visits", Delta: api.MaxCounterDelta + 1})
	err = c.Client(1).Call(ctx, api.MethodCounterAdd, api.SignedRecord{Record: base64.RawURLEncoding.EncodeToString(over)}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeInvalidParams {
		t.Fatalf("keymesh_counterAdd of a delta over the limit: %v", err)
	}

	// One body counts once: the same add signed again (P-256 signatures
	// are randomised, so the record's bytes differ) is acknowledged and
	// changes nothing.
	body := &api.CounterAdd{Counter: "visits", Delta: 5, Nonce: [16]byte{9}}
	for range 2 {
		rec := signed(t, signer, body)
		var out api.CounterValue
		if err := c.Client(1).Call(ctx, api.MethodCounterAdd, api.SignedRecord{Record: base64.RawURLEncoding.EncodeToString(rec)}, &out); err != nil || out.Value != 8 {
			t.Fatalf("the same add twice: %+v %v", out, err)
		}
	}
	waitCounter(t, c, "visits", 8, 1, 2, 3)

	evil := c.Evil(3)
	badSig := signed(t, signer, &api.CounterAdd{Counter: "visits", Delta: 7})
	badSig[len(badSig)-1] ^= 1
	invalid := map[string][]byte{
		"delta over the limit": over,
		"delta zero":           signed(t, signer, &api.CounterAdd{Counter: "visits"}),
		"bad name":             signed(t, signer, &api.CounterAdd{Counter: "Visits", Delta: 1}),
		"bad signature":        badSig,
		"trailing body byte":   signedBytes(t, signer, append((&api.CounterAdd{Counter: "visits", Delta: 1}).Marshal(), 0)),
	}

	t.Run("pushed by a malicious node", func(t *testing.T) {
		for name, rec := range invalid {
			for _, to := range []uint16{1, 2} {
				_, err := evil.Call(ctx, to, "replica.push", append([]byte{1}, rec...))
				var re *transport.RemoteError
				if !errors.As(err, &re) || !strings.Contains(re.Message, "refused record") {
					t.Fatalf("%s: push to node %d: %v", name, to, err)
				}
				if ok, err := c.Node(to).Replica().Has(ctx, replica.RecordID(rec)); err != nil || ok {
					t.Fatalf("%s: node %d stored it: %v %v", name, to, ok, err)
				}
			}
		}
		waitCounter(t, c, "visits", 8, 1, 2)
	})

	t.Run("served in catch-up by a malicious node", func(t *testing.T) {
		// Node 3 writes the invalid records into its own log, as a
		// modified build would, followed by one valid add: honest nodes
		// pulling its log skip the first and apply the last.
		for _, rec := range invalid {
			if _, err := evil.Node().Store().Append(ctx, replica.LogStream, rec); err != nil {
				t.Fatal(err)
			}
		}
		valid := signed(t, signer, &api.CounterAdd{Counter: "visits", Delta: 2})
		if _, err := evil.Node().Store().Append(ctx, replica.LogStream, valid); err != nil {
			t.Fatal(err)
		}
		for _, id := range []uint16{1, 2} {
			r := c.Node(id).Replica()
			if err := r.CatchUp(ctx); err != nil {
				t.Fatalf("node %d: CatchUp: %v", id, err)
			}
			if ok, err := r.Has(ctx, replica.RecordID(valid)); err != nil || !ok {
				t.Fatalf("node %d did not apply the valid record after the invalid ones: %v %v", id, ok, err)
			}
			for name, rec := range invalid {
				if ok, err := r.Has(ctx, replica.RecordID(rec)); err != nil || ok {
					t.Fatalf("%s: node %d stored it from catch-up: %v %v", name, id, ok, err)
				}
			}
		}
		waitCounter(t, c, "visits", 10, 1, 2)
	})
}

// signed returns a counter.add record of b signed by k.
func signed(t *testing.T, k *record.PrivateKey, b *api.CounterAdd) []byte {
	t.Helper()
	return signedBytes(t, k, b.Marshal())
}

func signedBytes(t *testing.T, k *record.PrivateKey, body []byte) []byte {
	t.Helper()
	r, err := record.Sign(counter.Kind, body, k)
	if err != nil {
		t.Fatal(err)
	}
	return r.Marshal()
}

// waitCounter waits (at most 10 s) until each of nodes holds want as its
// own value of the counter.
func waitCounter(t *testing.T, c *Cluster, name string, want uint64, nodes ...uint16) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, id := range nodes {
		for {
			v, err := c.Client(id).CounterGet(context.Background(), name)
			if err == nil && v.Value == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: counter %s is %+v (%v), want %d", id, name, v, err, want)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
}
