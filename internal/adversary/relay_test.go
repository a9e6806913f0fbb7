//go:build keymesh_adversary

package adversary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/channel"
)

// TestRelay runs an issuer–holder channel (internal/channel) through the
// relay service of a real 3-node cluster, the holder and the issuer each on
// other nodes, and plays node 3 as the malicious relay: its operator
// alters, drops, replays and makes up the messages its node serves, and
// forwards made-up posts to the honest nodes. The channel refuses every
// one of them, the holder gets the issuer's messages from another node,
// and no node's files hold the plaintext.
func TestRelay(t *testing.T) {
	c := NewCluster(t, Options{})
	ctx := context.Background()
	scope := c.NewUser("issuer-app").Scope

	inv, err := channel.NewInvite(nil)
	if err != nil {
		t.Fatal(err)
	}
	box := inv.Mailbox().String()
	post := func(via uint16, to string, msg []byte) {
		t.Helper()
		r, err := c.Client(via).RelayPost(ctx, scope, box, to, msg)
		if err != nil {
			t.Fatalf("post via node %d: %v", via, err)
		}
		if r.Stored != 3 {
			t.Fatalf("post via node %d stored on %d nodes, want 3", via, r.Stored)
		}
	}
	fetch := func(from uint16, to string) [][]byte {
		t.Helper()
		ms, more, err := c.Client(from).RelayFetch(ctx, scope, box, to, 0)
		if err != nil || more {
			t.Fatalf("fetch from node %d: more %v, %v", from, more, err)
		}
		var out [][]byte
		for _, m := range ms {
			out = append(out, m.Message)
		}
		return out
	}

	// The handshake: the holder (joiner) posts through node 1, the issuer
	// (inviter) reads it from node 2 and answers through node 2, the
	// holder reads the welcome from node 3.
	read, err := channel.ParseInvite(inv.Text())
	if err != nil {
		t.Fatal(err)
	}
	joining, hello, err := read.Join(nil)
	if err != nil {
		t.Fatal(err)
	}
	post(1, api.RelayToInviter, hello)
	hellos := fetch(2, api.RelayToInviter)
	if len(hellos) != 1 {
		t.Fatalf("%d hellos on node 2", len(hellos))
	}
	issuer, welcome, err := inv.Accept(hellos[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	post(2, api.RelayToJoiner, welcome)
	welcomes := fetch(3, api.RelayToJoiner)
	holder, err := joining.Finish(welcomes[len(welcomes)-1])
	if err != nil {
		t.Fatal(err)
	}

	// The issuer sends three credentials through node 1.
	secrets := []string{"passport number X1234567", "date of birth 1970-01-01", "address 1 Main Street"}
	for _, s := range secrets {
		m, err := issuer.Seal([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		post(1, api.RelayToJoiner, m)
	}

	// Node 3's operator rewrites what its node serves: the first
	// credential altered, the second dropped, one made up (the third with
	// another encapsulated key), and forwards that one to nodes 1 and 2.
	st := c.Node(3).Store()
	prefix := scope + "/" + box + "/2/"
	entries, err := st.List(ctx, "relay/msg", prefix, 0)
	if err != nil || len(entries) != 4 { // the welcome and three credentials
		t.Fatalf("node 3 holds %d messages for the holder: %v", len(entries), err)
	}
	altered := bytes.Clone(entries[1].Value)
	altered[len(altered)-1] ^= 1
	if err := st.Put(ctx, "relay/msg", entries[1].Key, altered); err != nil {
		t.Fatal(err)
	}
	// The second dropped: the third served in its place.
	if err := st.Put(ctx, "relay/msg", entries[2].Key, entries[3].Value); err != nil {
		t.Fatal(err)
	}
	madeUp := bytes.Clone(entries[3].Value)
	copy(madeUp[18:], bytes.Repeat([]byte{0x42}, 32)) // another encapsulated key
	if err := st.Put(ctx, "relay/msg", entries[3].Key, madeUp); err != nil {
		t.Fatal(err)
	}
	forged := (&api.RelayPost{To: 2, Message: madeUp})
	copy(forged.Scope[:], mustHex(t, scope))
	copy(forged.Mailbox[:], mustHex(t, box))
	for _, honest := range []uint16{1, 2} {
		if _, err := c.Node(3).Transport().Call(ctx, honest, api.PeerRelayPost, forged.Marshal()); err != nil {
			t.Fatalf("node %d refused bytes in quota (it stores what it cannot judge): %v", honest, err)
		}
		// A post for a scope no node has is refused even from a peer.
		stranger := *forged
		stranger.Scope[0] ^= 0xff
		if _, err := c.Node(3).Transport().Call(ctx, honest, api.PeerRelayPost, stranger.Marshal()); err == nil {
			t.Fatalf("node %d stored a forwarded post for an unknown scope", honest)
		}
	}

	// The holder reads node 3 first: nothing it serves opens but in
	// order, and what it altered, made up or left out is caught.
	from3 := fetch(3, api.RelayToJoiner)[1:] // after the welcome
	if len(from3) != 3 {
		t.Fatalf("node 3 serves %d messages after the welcome", len(from3))
	}
	if _, _, err := holder.Open(from3[0]); !errors.Is(err, channel.ErrNotAuthentic) {
		t.Fatalf("the altered credential: %v", err)
	}
	var oe *channel.OrderError
	if _, _, err := holder.Open(from3[1]); !errors.As(err, &oe) || oe.Want != 0 || oe.Got != 2 {
		t.Fatalf("the third credential with the first two missing: %v", err)
	}
	if _, _, err := holder.Open(from3[2]); !errors.Is(err, channel.ErrNotAuthentic) {
		t.Fatalf("the made-up message: %v", err)
	}
	// Then node 2: the made-up message node 3 forwarded is there too, and
	// refused; the issuer's three open in order.
	var got []string
	for _, m := range fetch(2, api.RelayToJoiner)[1:] {
		pt, _, err := holder.Open(m)
		switch {
		case errors.Is(err, channel.ErrNotAuthentic):
		case err != nil:
			t.Fatalf("node 2's messages: %v", err)
		default:
			got = append(got, string(pt))
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(secrets) {
		t.Fatalf("the holder read %q, want %q", got, secrets)
	}
	// Replayed by node 3 later: refused as already read.
	if _, _, err := holder.Open(from3[1]); !errors.As(err, &oe) || oe.Got != 2 || oe.Want != 3 {
		t.Fatalf("a replayed credential: %v", err)
	}

	// No node's files hold any plaintext.
	for _, s := range secrets {
		filepath.WalkDir(c.dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a credential's plaintext", filepath.Base(path))
			}
			return nil
		})
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	id, err := api.ParseRelayID("id", s)
	if err != nil {
		t.Fatal(err)
	}
	return id[:]
}
