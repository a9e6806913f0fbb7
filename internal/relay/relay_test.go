package relay

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/channel"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/sqlite"
	"github.com/keymesh/keymesh/internal/transport"
)

// noPeers is a transport with no peers: these tests are one node's; the
// forwarding runs on a real cluster in internal/adversary (TestRelay).
type noPeers struct{}

func (noPeers) Call(context.Context, uint16, string, []byte) ([]byte, error) {
	return nil, errors.New("no peers")
}
func (noPeers) Peers() []transport.PeerStatus { return nil }

const (
	scopeA  = "0123456789abcdef0123456789abcdef"
	scopeB  = "fedcba9876543210fedcba9876543210"
	mailbox = "00112233445566778899aabbccddeeff"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T, scopeBytes int64) (*Service, *clock, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.db")
	st, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	s, err := New(Options{
		Store: st, Transport: noPeers{}, ScopeBytes: scopeBytes, Now: clk.now,
		ScopeKnown: func(_ context.Context, s string) bool { return s == scopeA || s == scopeB },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, clk, path
}

func post(s *Service, scope, to string, msg []byte) (*api.RelayPostResult, error) {
	return s.Post(context.Background(), api.RelayPostParams{Scope: scope, Mailbox: mailbox, To: to, Message: base64.RawURLEncoding.EncodeToString(msg)})
}

func fetch(t *testing.T, s *Service, scope, to string, after uint64) *api.RelayFetchResult {
	t.Helper()
	out, err := s.Fetch(context.Background(), api.RelayFetchParams{Scope: scope, Mailbox: mailbox, To: to, After: after})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func code(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

// TestPostFetch: messages come back in the order stored, per inbox, after
// an index; the same bytes are stored once.
func TestPostFetch(t *testing.T) {
	s, _, _ := newService(t, 0)
	for i := range 5 {
		r, err := post(s, scopeA, api.RelayToJoiner, fmt.Appendf(nil, "to joiner %d", i))
		if err != nil || r.Index != uint64(i+1) || r.Stored != 1 {
			t.Fatalf("post %d: %+v %v", i, r, err)
		}
	}
	if r, err := post(s, scopeA, api.RelayToJoiner, []byte("to joiner 2")); err != nil || r.Index != 3 {
		t.Fatalf("the same bytes again: %+v %v (want index 3, stored once)", r, err)
	}
	if _, err := post(s, scopeA, api.RelayToInviter, []byte("to inviter")); err != nil {
		t.Fatal(err)
	}
	got := fetch(t, s, scopeA, api.RelayToJoiner, 2)
	if len(got.Messages) != 3 || got.More {
		t.Fatalf("after 2: %d messages, more %v", len(got.Messages), got.More)
	}
	for k, m := range got.Messages {
		b, _ := base64.RawURLEncoding.DecodeString(m.Message)
		if m.Index != uint64(k+3) || string(b) != fmt.Sprintf("to joiner %d", k+2) {
			t.Fatalf("message %d: index %d %q", k, m.Index, b)
		}
	}
	if in := fetch(t, s, scopeA, api.RelayToInviter, 0); len(in.Messages) != 1 {
		t.Fatalf("the inviter's inbox: %d messages", len(in.Messages))
	}
	// Another scope's inbox of the same mailbox is another inbox.
	if other := fetch(t, s, scopeB, api.RelayToJoiner, 0); len(other.Messages) != 0 {
		t.Fatalf("scope B sees %d of scope A's messages", len(other.Messages))
	}
}

// TestBadPosts: malformed params and unknown scopes are refused with a
// clear error and store nothing.
func TestBadPosts(t *testing.T) {
	s, _, _ := newService(t, 0)
	ok := base64.RawURLEncoding.EncodeToString([]byte("m"))
	for name, c := range map[string]struct {
		p    api.RelayPostParams
		code int
	}{
		"short scope":    {api.RelayPostParams{Scope: scopeA[:31], Mailbox: mailbox, To: "joiner", Message: ok}, api.CodeInvalidParams},
		"upper-case hex": {api.RelayPostParams{Scope: strings.ToUpper(scopeA), Mailbox: mailbox, To: "joiner", Message: ok}, api.CodeInvalidParams},
		"bad mailbox":    {api.RelayPostParams{Scope: scopeA, Mailbox: "zz" + mailbox[2:], To: "joiner", Message: ok}, api.CodeInvalidParams},
		"bad recipient":  {api.RelayPostParams{Scope: scopeA, Mailbox: mailbox, To: "relay", Message: ok}, api.CodeInvalidParams},
		"empty message":  {api.RelayPostParams{Scope: scopeA, Mailbox: mailbox, To: "joiner", Message: ""}, api.CodeInvalidParams},
		"padded base64":  {api.RelayPostParams{Scope: scopeA, Mailbox: mailbox, To: "joiner", Message: ok + "=="}, api.CodeInvalidParams},
		"too large":      {api.RelayPostParams{Scope: scopeA, Mailbox: mailbox, To: "joiner", Message: base64.RawURLEncoding.EncodeToString(make([]byte, api.MaxRelayMessage+1))}, api.CodeInvalidParams},
		"unknown scope":  {api.RelayPostParams{Scope: "11111111111111111111111111111111", Mailbox: mailbox, To: "joiner", Message: ok}, api.CodeNotFound},
	} {
		if _, err := s.Post(context.Background(), c.p); code(err) != c.code {
			t.Errorf("%s: %v, want code %d", name, err, c.code)
		}
	}
	if got := fetch(t, s, scopeA, api.RelayToJoiner, 0); len(got.Messages) != 0 {
		t.Fatalf("refused posts stored %d messages", len(got.Messages))
	}
	// A peer's forwarded post is checked the same way.
	for name, body := range map[string][]byte{
		"short":         make([]byte, 33),
		"bad recipient": append(make([]byte, 32), 3, 'm'),
		"unknown scope": append(make([]byte, 32), 1, 'm'),
	} {
		if _, err := s.handlePost(context.Background(), 2, body); err == nil {
			t.Errorf("a forwarded post (%s) was stored", name)
		}
	}
}

// TestQuotas: an inbox holds api.MaxRelayInbox messages and
// api.MaxRelayInboxBytes; a scope holds Options.ScopeBytes on a node. A
// full one is refused with CodeLimitExceeded and the rest still works.
func TestQuotas(t *testing.T) {
	s, _, _ := newService(t, 3*api.MaxRelayMessage)
	for i := range api.MaxRelayInbox {
		if _, err := post(s, scopeA, api.RelayToJoiner, fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	if _, err := post(s, scopeA, api.RelayToJoiner, []byte("one more")); code(err) != api.CodeLimitExceeded {
		t.Fatalf("post past the inbox's count: %v", err)
	}
	// Scope B: two large messages fit, the third passes its bytes.
	big := func(b byte) []byte { return bytes.Repeat([]byte{b}, api.MaxRelayMessage) }
	for i := range 3 {
		if _, err := post(s, scopeB, api.RelayToJoiner, big(byte(i))); err != nil {
			t.Fatalf("large post %d: %v", i, err)
		}
	}
	if _, err := post(s, scopeB, api.RelayToInviter, []byte("x")); code(err) != api.CodeLimitExceeded || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("post past the scope's bytes: %v", err)
	}
	// A fetch of large messages stays near the body limit and says more.
	got := fetch(t, s, scopeB, api.RelayToJoiner, 0)
	if len(got.Messages) != 1 || !got.More {
		t.Fatalf("fetch of large messages: %d, more %v", len(got.Messages), got.More)
	}
	if all := fetch(t, s, scopeA, api.RelayToJoiner, 0); len(all.Messages) != api.MaxRelayFetch || !all.More {
		t.Fatalf("fetch of a full inbox: %d, more %v", len(all.Messages), all.More)
	}
}

// TestSweep: an inbox is forgotten api.RelayInboxTTLHours after its last
// post, and its bytes return to its scope's budget; a newer one stays.
func TestSweep(t *testing.T) {
	s, clk, _ := newService(t, 2*api.MaxRelayMessage)
	full := bytes.Repeat([]byte{1}, api.MaxRelayMessage)
	if _, err := post(s, scopeA, api.RelayToJoiner, full); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(time.Hour)
	if _, err := post(s, scopeA, api.RelayToInviter, bytes.Repeat([]byte{2}, api.MaxRelayMessage)); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(inboxTTL - time.Hour)
	if n, err := s.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d, %v (want the joiner's inbox)", n, err)
	}
	if got := fetch(t, s, scopeA, api.RelayToJoiner, 0); len(got.Messages) != 0 {
		t.Fatal("an expired inbox still served")
	}
	if got := fetch(t, s, scopeA, api.RelayToInviter, 0); len(got.Messages) != 1 {
		t.Fatal("a live inbox was swept")
	}
	// The swept bytes are the scope's again; the same bytes post afresh.
	if r, err := post(s, scopeA, api.RelayToJoiner, full); err != nil || r.Index != 1 {
		t.Fatalf("post after the sweep: %+v %v", r, err)
	}
}

// TestChannelThroughRelay: a channel's handshake and messages pass through
// the relay's store unchanged, the store holds none of the plaintext, and
// the largest channel message fits a relay message.
func TestChannelThroughRelay(t *testing.T) {
	if channel.MaxMessage > api.MaxRelayMessage {
		t.Fatalf("channel.MaxMessage %d > api.MaxRelayMessage %d", channel.MaxMessage, api.MaxRelayMessage)
	}
	s, _, path := newService(t, 0)
	inv, _ := channel.NewInvite(nil)
	box := inv.Mailbox().String()
	relay := func(to string, msg []byte) []byte {
		t.Helper()
		if _, err := s.Post(context.Background(), api.RelayPostParams{Scope: scopeA, Mailbox: box, To: to, Message: base64.RawURLEncoding.EncodeToString(msg)}); err != nil {
			t.Fatal(err)
		}
		out, err := s.Fetch(context.Background(), api.RelayFetchParams{Scope: scopeA, Mailbox: box, To: to})
		if err != nil || len(out.Messages) == 0 {
			t.Fatalf("fetch: %v", err)
		}
		b, _ := base64.RawURLEncoding.DecodeString(out.Messages[len(out.Messages)-1].Message)
		return b
	}
	read, _ := channel.ParseInvite(inv.Text())
	j, hello, _ := read.Join(nil)
	issuer, welcome, err := inv.Accept(relay(api.RelayToInviter, hello), nil)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := j.Finish(relay(api.RelayToJoiner, welcome))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "credential: date of birth 1970-01-01"
	m, _ := issuer.Seal([]byte(secret))
	pt, _, err := holder.Open(relay(api.RelayToJoiner, m))
	if err != nil || string(pt) != secret {
		t.Fatalf("opened %q, %v", pt, err)
	}
	s.st.(interface{ Close() error }).Close()
	for _, f := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("date of birth")) {
			t.Fatalf("%s holds the plaintext", filepath.Base(f))
		}
	}
}

// countingStore counts the message bytes read from the real store under
// it.
type countingStore struct {
	store.Store
	read atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, ns, key string) ([]byte, error) {
	v, err := c.Store.Get(ctx, ns, key)
	c.read.Add(int64(len(v)))
	return v, err
}

func (c *countingStore) List(ctx context.Context, ns, prefix string, limit int) ([]store.Entry, error) {
	es, err := c.Store.List(ctx, ns, prefix, limit)
	for _, e := range es {
		c.read.Add(int64(len(e.Value)))
	}
	return es, err
}

// TestFetchReadsWhatItReturns: a fetch after an index reads the messages it
// returns and little else, not the whole inbox: a full inbox fetched
// again and again costs the node what it answers.
func TestFetchReadsWhatItReturns(t *testing.T) {
	s, _, _ := newService(t, 0)
	cs := &countingStore{Store: s.st}
	s.st = cs
	msg := func(i int) []byte { return append(bytes.Repeat([]byte{byte(i)}, 16<<10), byte(i>>8)) }
	for i := range 200 {
		if _, err := post(s, scopeA, api.RelayToJoiner, msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	cs.read.Store(0)
	got := fetch(t, s, scopeA, api.RelayToJoiner, 195)
	if len(got.Messages) != 5 || got.More {
		t.Fatalf("after 195: %d messages, more %v", len(got.Messages), got.More)
	}
	for k, m := range got.Messages {
		b, _ := base64.RawURLEncoding.DecodeString(m.Message)
		if m.Index != uint64(196+k) || !bytes.Equal(b, msg(195+k)) {
			t.Fatalf("message %d: index %d", k, m.Index)
		}
	}
	if n := cs.read.Load(); n > 6*(16<<10)+1024 {
		t.Fatalf("a fetch of 5 messages read %d bytes of the store", n)
	}
}
