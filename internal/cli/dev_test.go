package cli

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var readyLine = regexp.MustCompile(`(?m)^keymesh dev: 3 nodes ready \(threshold 2\) — try: curl -s -H 'Content-Type: application/json' (127\.0\.0\.1:\d+) -d '\{"jsonrpc":"2\.0","id":1,"method":"keymesh_nodeInfo"\}'$`)
var nodeLine = regexp.MustCompile(`(?m)^node (\d): (http://127\.0\.0\.1:\d+) `)

// devRun starts keymesh dev, waits for its ready line, and returns the
// output so far, each node's identity key by URL, and a stop function that
// cancels it (as Ctrl-C does) and returns the exit code and full output.
func devRun(t *testing.T, args ...string) (string, map[string]string, func() (int, string)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &syncBuffer{}, &syncBuffer{}
	code := make(chan int, 1)
	go func() { code <- Run(ctx, append([]string{"dev"}, args...), out, errOut) }()
	stop := func() (int, string) {
		cancel()
		select {
		case c := <-code:
			return c, out.String()
		case <-time.After(20 * time.Second):
			t.Fatal("keymesh dev did not stop within 20 s")
			return 0, ""
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for !readyLine.MatchString(out.String()) {
		select {
		case c := <-code:
			t.Fatalf("keymesh dev exited with %d:\n%s\n%s", c, out, errOut)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no ready line:\n%s\n%s", out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
	text := out.String()
	keys := map[string]string{}
	for _, m := range nodeLine.FindAllStringSubmatch(text, -1) {
		c, err := client.New(m[2])
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.NodeInfo(ctx)
		if err != nil {
			t.Fatalf("node %s: %v", m[1], err)
		}
		for _, p := range info.Peers {
			if !p.Reachable {
				t.Errorf("node %s reports peer %d unreachable after the ready line", m[1], p.ID)
			}
		}
		if fmt.Sprint(info.NodeID) != m[1] || info.N != 3 || info.Threshold != 2 {
			t.Errorf("node %s: %+v", m[1], info)
		}
		keys[m[2]] = info.IdentityKey
	}
	if len(keys) != 3 {
		t.Fatalf("%d node lines:\n%s", len(keys), text)
	}
	return text, keys, stop
}

// TestDev runs keymesh dev twice on one directory: the first run creates
// the cluster, the second reuses it with the same identities, and both stop
// cleanly when cancelled.
func TestDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	base := fmt.Sprint(porttest.Block(t, 6))

	text, keys1, stop := devRun(t, "--dir", dir, "--base-port", base)
	if !strings.Contains(text, "keymesh dev: created cluster km-") {
		t.Fatalf("first run:\n%s", text)
	}
	if m := readyLine.FindStringSubmatch(text); m[1] != "127.0.0.1:"+base {
		t.Fatalf("ready line names %s, want node 1 at port %s", m[1], base)
	}
	code, full := stop()
	if code != 0 || !strings.HasSuffix(full, "keymesh dev: stopped\n") {
		t.Fatalf("exit %d:\n%s", code, full)
	}

	text, keys2, stop := devRun(t, "--dir", dir)
	if !strings.Contains(text, "keymesh dev: reusing cluster km-") {
		t.Fatalf("second run:\n%s", text)
	}
	if fmt.Sprint(keys1) != fmt.Sprint(keys2) {
		t.Fatalf("identities changed: %v → %v", keys1, keys2)
	}
	if code, full := stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, full)
	}
}
