//go:build keymesh_adversary

package adversary

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestEvilHandle: a node's replaced answer to a peer RPC is what its peers
// get, also after the node restarts; an RPC kind nobody serves is an error.
func TestEvilHandle(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	ev1, ev3 := c.Evil(1), c.Evil(3)
	if _, err := ev1.SendRaw(ctx, 3, "test/lie", []byte("did you store it?")); err == nil {
		t.Fatal("an RPC kind nobody serves was answered")
	}
	ev3.Handle("test/lie", func(_ context.Context, from uint16, body []byte) ([]byte, error) {
		if from != 1 {
			return nil, errors.New("only node 1 asks")
		}
		return []byte("yes, stored: " + string(body)), nil
	})
	for _, when := range []string{"before", "after"} {
		if when == "after" {
			c.Restart(3)
		}
		out, err := ev1.Call(ctx, 3, "test/lie", []byte("x"))
		if err != nil || !strings.HasPrefix(string(out), "yes, stored") {
			t.Fatalf("%s a restart: %q, %v", when, out, err)
		}
	}
}
