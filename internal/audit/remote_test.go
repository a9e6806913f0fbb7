package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// holder serves, like a peer's API, the heads it keeps of node 1 (pinned
// with pub), and returns its URL.
func holder(t *testing.T, self uint16, pub ed25519.PublicKey, heads ...*SignedHead) string {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "peer.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := NewHeadStore(st)
	for _, h := range heads {
		if err := hs.Keep(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle(HeadsPattern, HeadsHandler(self, hs, map[uint16]ed25519.PublicKey{1: pub}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestVerifyAgainstHeadsOverHTTP plays node 1 rewriting its chain (entries
// 4 on, entry 4 dropped) after it signed heads at 5 and 10 that nodes 2
// and 3 keep: the heads fetched from their HTTP handlers, checked with the
// key both pin, make Verify fail naming entry 1: no head matches any more,
// and a head commits to its entry and, through the links, to every one
// before it, so the heads bound the rewrite to entries 1 to 5 (the
// network check names entry 7 in cli's TestAuditVerifyOverNetwork, where
// a head at 6 still matches). The untouched chain verifies against the
// same heads. On SQLite and PostgreSQL.
func TestVerifyAgainstHeadsOverHTTP(t *testing.T) {
	ctx := context.Background()
	pub, id, _ := ed25519.GenerateKey(rand.Reader)
	backends(t, func(t *testing.T, open func() store.Store) {
		st := open()
		l := chain(t, st, 5)
		h5 := signed(t, l, id)
		for i := 5; i < 10; i++ {
			l.Append(ctx, sample(i))
		}
		h10 := signed(t, l, id)
		urls := []string{holder(t, 2, pub, h5, h10), holder(t, 3, pub, h10)}
		fetch := func(t *testing.T) ([]*SignedHead, ed25519.PublicKey) {
			var fs []*Fetched
			for _, u := range urls {
				f, err := FetchHeads(ctx, nil, u, 1)
				if err != nil {
					t.Fatal(err)
				}
				fs = append(fs, f)
			}
			key, err := PinnedKey(fs, nil)
			if err != nil {
				t.Fatal(err)
			}
			var hs []*SignedHead
			for _, f := range fs {
				hs = append(hs, f.Heads...)
			}
			return hs, key
		}
		hs, key := fetch(t)
		if len(hs) != 3 || !key.Equal(pub) {
			t.Fatalf("fetched %d heads, key %x", len(hs), key)
		}
		rep, err := Verify(ctx, st, 1, key, hs)
		if err != nil || !rep.OK() || rep.Matched != 10 {
			t.Fatalf("untouched: %+v %v", rep, err)
		}

		// The rewrite: entries 4..10 removed, 5..10 appended again
		// and one more, through the log: every link holds.
		var olds []*Entry
		for s := uint64(4); s <= 10; s++ {
			b, _ := st.Get(ctx, nsChain, chainKey(s))
			e, _ := DecodeEntry(b)
			olds = append(olds, e)
			st.Delete(ctx, nsChain, chainKey(s))
		}
		b3, _ := st.Get(ctx, nsChain, chainKey(3))
		st.Put(ctx, nsMeta, metaHead, encodeEnd(3, hashEncoding(b3)))
		for _, e := range append(olds[1:], olds[6]) {
			if _, err := NewLog(st).Append(ctx, *e); err != nil {
				t.Fatal(err)
			}
		}
		if rep, _ := Verify(ctx, st, 1, key, nil); !rep.OK() {
			t.Fatalf("the rewrite is consistent on its own: %v", rep.Problems)
		}
		hs, key = fetch(t)
		rep, err = Verify(ctx, st, 1, key, hs)
		if err != nil {
			t.Fatal(err)
		}
		wantBad(t, rep, 1, "rewritten")
	})
}

// TestFetchHeadsRefusesMaliciousHolders: a holder that serves another
// node's heads, more heads than a holder keeps, unknown fields or a bad
// key is refused; holders pinning different keys are not believed; a head
// a holder forged with its own key does not verify with the pinned one.
func TestFetchHeadsRefusesMaliciousHolders(t *testing.T) {
	ctx := context.Background()
	pub, id, _ := ed25519.GenerateKey(rand.Reader)
	evilPub, evil, _ := ed25519.GenerateKey(rand.Reader)
	st, _ := sqlite.Open(filepath.Join(t.TempDir(), "k.db"))
	defer st.Close()
	st.Migrate(ctx)
	l := chain(t, st, 3)
	h := signed(t, l, id)
	serve := func(body any) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(body) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	key := base64.StdEncoding.EncodeToString(pub)
	other := *h
	other.Node = 2
	many := make([]HeadJSON, maxHeldHeads+1)
	for i := range many {
		many[i] = h.JSON()
	}
	for name, body := range map[string]any{
		"another node's head": HeldHeads{Holder: 2, Node: 1, IdentityKey: key, Heads: []HeadJSON{other.JSON()}},
		"another node asked":  HeldHeads{Holder: 2, Node: 3, IdentityKey: key, Heads: []HeadJSON{}},
		"holder is the node":  HeldHeads{Holder: 1, Node: 1, IdentityKey: key, Heads: []HeadJSON{}},
		"too many":            HeldHeads{Holder: 2, Node: 1, IdentityKey: key, Heads: many},
		"bad key":             HeldHeads{Holder: 2, Node: 1, IdentityKey: "AAAA", Heads: []HeadJSON{}},
		"unknown field":       map[string]any{"holder": 2, "node": 1, "identityKey": key, "heads": []any{}, "extra": 1},
	} {
		if _, err := FetchHeads(ctx, nil, serve(body), 1); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
	// Node 3 lies about node 1's key and serves a head it forged with it.
	forged, _ := SignHead(Head{Cluster: "c1", Node: 1, Seq: 3, Hash: [32]byte{1}, Time: h.Time}, evil)
	honest, err := FetchHeads(ctx, nil, holder(t, 2, pub, h), 1)
	if err != nil {
		t.Fatal(err)
	}
	liar, err := FetchHeads(ctx, nil, holder(t, 3, evilPub, forged), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PinnedKey([]*Fetched{honest, liar}, nil); !errors.Is(err, ErrKeyDisagreement) {
		t.Fatalf("disagreeing holders: %v", err)
	}
	if _, err := PinnedKey([]*Fetched{liar}, pub); !errors.Is(err, ErrKeyDisagreement) {
		t.Fatalf("a holder disagreeing with the given key: %v", err)
	}
	rep, _ := Verify(ctx, st, 1, pub, append(honest.Heads, liar.Heads...))
	if rep.OK() || !strings.Contains(rep.Problems[0].Msg, "signature does not verify") {
		t.Fatalf("forged head: %+v", rep)
	}
	// A node that is not a peer of the holder: 404, an error.
	if _, err := FetchHeads(ctx, nil, holder(t, 2, pub), 7); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("not a peer: %v", err)
	}
}
