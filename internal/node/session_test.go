package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keymesh/keymesh/internal/mpc/round"
	"github.com/keymesh/keymesh/internal/mpctest"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/postgres"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// countingRound wraps a protocol's round 1 and counts its Finalize calls:
// round 1 is finalized by Session.Start, which is what produces a
// session's first messages. Zero calls means nothing was sent.
type countingRound struct {
	round.Round
	finalized *atomic.Int32
}

func (r countingRound) Finalize() ([]*round.Message, round.Round, error) {
	r.finalized.Add(1)
	return r.Round.Finalize()
}

// TestSessionRecord: on a real 3-node cluster, a session id that ran once
// is refused when it comes again, before the session produces a message,
// with a security event in the log; after a restart it is still refused.
func TestSessionRecord(t *testing.T) {
	tc := newTestCluster(t)
	ctx := context.Background()
	for _, n := range tc.nodes {
		wantReady(t, n, 200)
	}
	ps := []round.PartyID{1, 2, 3}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	sid, err := round.NewSessionID(mpctest.CommitRevealProtocol, ps, len(ps), nonce)
	if err != nil {
		t.Fatal(err)
	}
	newSession := func(self round.PartyID, finalized *atomic.Int32) *round.Session {
		s, err := round.NewSession(sid, self, ps, countingRound{mpctest.NewCommitReveal(sid, self, ps), finalized})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The first run completes at every node.
	var first atomic.Int32
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i, n := range tc.nodes {
		wg.Go(func() { _, errs[i] = n.RunSession(ctx, "commit-reveal", newSession(round.PartyID(n.cfg.ID), &first)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d, first run: %v", i+1, err)
		}
	}
	if first.Load() != 3 {
		t.Fatalf("round 1 finalized %d times in the first run, want 3", first.Load())
	}

	// A forced repeat of the same id on node 1: refused, never started.
	repeat := func(what string) {
		t.Helper()
		var again atomic.Int32
		s := newSession(1, &again)
		_, err := tc.nodes[0].RunSession(ctx, "commit-reveal", s)
		if !errors.Is(err, ErrSessionRepeated) {
			t.Fatalf("%s: RunSession of a repeated id: %v, want ErrSessionRepeated", what, err)
		}
		if again.Load() != 0 {
			t.Fatalf("%s: the repeated session was started (round 1 finalized) before the refusal", what)
		}
		if !s.Done() {
			t.Fatalf("%s: the refused session is not ended", what)
		}
		if !strings.Contains(tc.logs.String(), `"event":"session_repeat"`) {
			t.Fatalf("%s: no security event in node 1's log", what)
		}
	}
	repeat("same process")
	tc.restart(0)
	wantReady(t, tc.nodes[0], 200)
	repeat("after a restart")

	// The refusal is counted as a failed session.
	if body := get(t, tc.nodes[0].MetricsURL()+"/metrics"); !strings.Contains(body, `keymesh_mpc_sessions_total{protocol="commit-reveal",result="error"} 1`) {
		t.Errorf("/metrics does not count the refused session")
	}
}

// TestSessionRecordConcurrent races many inserts of one session id through
// two handles on one database, as two API processes of one node sharing it
// would: exactly one wins, on SQLite and on PostgreSQL (SERIALIZABLE with
// retry), and the entry survives reopening the database.
func TestSessionRecordConcurrent(t *testing.T) {
	ctx := context.Background()
	race := func(t *testing.T, open func() store.Store) {
		a, b := open(), open()
		var sid round.SessionID
		rand.Read(sid[:])
		const tries = 16
		var won, refused atomic.Int32
		var wg sync.WaitGroup
		for i := range tries {
			st := a
			if i%2 == 1 {
				st = b
			}
			wg.Go(func() {
				err := recordSession(ctx, st, "test", sid, []round.PartyID{1, 2})
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, ErrSessionRepeated):
					refused.Add(1)
				default:
					t.Errorf("recordSession: %v", err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || refused.Load() != tries-1 {
			t.Fatalf("%d inserts won, %d refused; want 1 and %d", won.Load(), refused.Load(), tries-1)
		}
		a.Close()
		b.Close()
		c := open()
		defer c.Close()
		if err := recordSession(ctx, c, "test", sid, nil); !errors.Is(err, ErrSessionRepeated) {
			t.Fatalf("after reopening: %v, want ErrSessionRepeated", err)
		}
		var other round.SessionID
		rand.Read(other[:])
		if err := recordSession(ctx, c, "test", other, nil); err != nil {
			t.Fatalf("another id: %v", err)
		}
		raw, err := c.Get(ctx, sessionNS, hex.EncodeToString(sid[:]))
		if err != nil || !strings.Contains(string(raw), `"protocol":"test"`) {
			t.Fatalf("stored entry %q, %v", raw, err)
		}
	}

	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), StoreFile)
		race(t, func() store.Store {
			db, err := sqlite.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			return db
		})
	})

	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("KEYMESH_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("PostgreSQL tests need a server: set KEYMESH_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable (scripts/test sets it when one answers on 127.0.0.1:5432)")
		}
		var b [6]byte
		rand.Read(b[:])
		schema := "km_test_session_" + hex.EncodeToString(b[:])
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Close(context.Background()) })
		if _, err := admin.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := admin.Exec(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
				t.Errorf("dropping schema %s: %v", schema, err)
			}
		})
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		race(t, func() store.Store {
			db, err := postgres.Open(ctx, u.String())
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			return db
		})
	})
}

// BenchmarkRecordSession measures what the durable record adds to every
// MPC session on a node: one check-and-insert transaction in its SQLite
// store (WAL, synchronous=NORMAL).
func BenchmarkRecordSession(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(filepath.Join(b.TempDir(), StoreFile))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	parties := []round.PartyID{1, 2}
	var sid round.SessionID
	for b.Loop() {
		rand.Read(sid[:])
		if err := recordSession(ctx, db, "bench", sid, parties); err != nil {
			b.Fatal(err)
		}
	}
}
