package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/storetest"
)

// EnvDSN names the environment variable holding the test server's
// connection string. scripts/test sets it when a server answers on
// 127.0.0.1:5432.
const EnvDSN = "KEYMESH_TEST_POSTGRES"

// testDSN returns the server to test against, or skips the test saying how
// to set one.
func testDSN(t testing.TB) string {
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skipf("PostgreSQL tests need a server: set %s, e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable (scripts/test sets it when one answers on 127.0.0.1:5432)", EnvDSN, EnvDSN)
	}
	return dsn
}

// schemas hands out fresh schemas on the test server and drops them when
// the test ends, so that parallel test runs and packages never share
// tables.
type schemas struct {
	t      testing.TB
	dsn    string
	prefix string
	mu     sync.Mutex
	made   map[string]bool
}

func newSchemas(t testing.TB) *schemas {
	var b [6]byte
	rand.Read(b[:])
	s := &schemas{t: t, dsn: testDSN(t), prefix: "km_test_" + hex.EncodeToString(b[:]), made: map[string]bool{}}
	t.Cleanup(s.dropAll)
	return s
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]`)

// open returns a migrated store in schema name (created on first use).
// Calls with the same name share the schema, as two processes would.
func (s *schemas) open(name string) *DB {
	t := s.t
	t.Helper()
	ctx := context.Background()
	schema := s.prefix + "_" + nonIdent.ReplaceAllString(strings.ToLower(name), "_")
	s.mu.Lock()
	if !s.made[schema] {
		s.exec(`CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize())
		s.made[schema] = true
	}
	s.mu.Unlock()
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	db, err := OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

func (s *schemas) exec(sql string) {
	s.t.Helper()
	conn, err := pgx.Connect(context.Background(), s.dsn)
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		s.t.Fatal(err)
	}
}

func (s *schemas) dropAll() {
	for schema := range s.made {
		s.exec(`DROP SCHEMA ` + pgx.Identifier{schema}.Sanitize() + ` CASCADE`)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, name string) store.Store {
		return newSchemasOnce(t).open(name)
	})
}

// newSchemasOnce keeps one schemas per (sub)test, so that the same name
// within a test means the same schema.
var (
	perTestMu sync.Mutex
	perTest   = map[testing.TB]*schemas{}
)

func newSchemasOnce(t *testing.T) *schemas {
	perTestMu.Lock()
	defer perTestMu.Unlock()
	if s := perTest[t]; s != nil {
		return s
	}
	s := newSchemas(t)
	perTest[t] = s
	t.Cleanup(func() { perTestMu.Lock(); delete(perTest, t); perTestMu.Unlock() })
	return s
}

func TestMigrateTwiceIsNoop(t *testing.T) {
	ctx := context.Background()
	s := newSchemas(t)
	db := s.open("migrate")
	if err := db.Put(ctx, "ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = s.open("migrate")
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	ms, _ := store.LoadMigrations(migrationFS, "migrations")
	if n != len(ms) || n == 0 {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	if v, err := db.Get(ctx, "ns", "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reopen: %q %v", v, err)
	}
}

// TestAppendsVisibleInIDOrder: appends from concurrent transactions commit
// in ID order, so a reader paging by "after the last ID I saw" (as replica
// catch-up does) never skips a record that committed late.
func TestAppendsVisibleInIDOrder(t *testing.T) {
	ctx := context.Background()
	s := newSchemas(t)
	w, r := s.open("order"), s.open("order")
	const writers, each = 4, 25
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range each {
				if err := w.Update(ctx, func(tx store.Ops) error {
					_, err := tx.Append(ctx, "log", []byte(fmt.Sprintf("%d/%d", i, j)))
					return err
				}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	seen := 0
	var after int64
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		rs, err := r.Records(ctx, "log", after, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range rs {
			after = rec.ID
			seen++
		}
	}
	rs, err := r.Records(ctx, "log", after, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen += len(rs)
	if seen != writers*each {
		t.Fatalf("a reader paging by ID saw %d of %d records", seen, writers*each)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "postgres://user:s3cret-pw@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"); err == nil {
		t.Fatal("connected to a closed port")
	} else if strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("error shows the password: %v", err)
	}
	if _, err := Open(ctx, "postgres://user:s3cret-pw@host:notaport/x"); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("bad DSN: %v", err)
	}
}

func TestRetryableErrorsAreRetried(t *testing.T) {
	ctx := context.Background()
	db := newSchemas(t).open("retry")
	// Two transactions that each read what the other writes: under
	// SERIALIZABLE one of them fails with 40001 and Update runs it again.
	if err := db.Put(ctx, "ns", "a", []byte("0")); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(ctx, "ns", "b", []byte("0")); err != nil {
		t.Fatal(err)
	}
	var read sync.WaitGroup // both have read before either writes
	read.Add(2)
	var wg sync.WaitGroup
	runs := make([]int, 2)
	for i, keys := range [][2]string{{"a", "b"}, {"b", "a"}} {
		wg.Go(func() {
			err := db.Update(ctx, func(tx store.Ops) error {
				runs[i]++
				if _, err := tx.Get(ctx, "ns", keys[0]); err != nil {
					return err
				}
				if runs[i] == 1 {
					read.Done()
					read.Wait()
				}
				return tx.Put(ctx, "ns", keys[1], []byte(fmt.Sprint(i+1)))
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if runs[0]+runs[1] < 3 {
		t.Fatalf("expected a serialization failure and a rerun, got runs %v", runs)
	}
	a, _ := db.Get(ctx, "ns", "a")
	b, _ := db.Get(ctx, "ns", "b")
	if string(a) != "2" || string(b) != "1" {
		t.Fatalf("a=%q b=%q", a, b)
	}
	// Non-retryable errors come back at once.
	boom := errors.New("boom")
	n := 0
	if err := db.Update(ctx, func(store.Ops) error { n++; return boom }); !errors.Is(err, boom) || n != 1 {
		t.Fatalf("Update: %v after %d runs", err, n)
	}
}

func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	db := newSchemas(b).open("bench")
	v := make([]byte, 256)
	i := 0
	for b.Loop() {
		if err := db.Put(ctx, "bench", fmt.Sprint(i), v); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	db := newSchemas(b).open("bench")
	if err := db.Put(ctx, "bench", "k", make([]byte, 256)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := db.Get(ctx, "bench", "k"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdate is a read-modify-write transaction with an append, the
// shape of a replica apply.
func BenchmarkUpdate(b *testing.B) {
	ctx := context.Background()
	db := newSchemas(b).open("bench")
	i := 0
	for b.Loop() {
		i++
		if err := db.Update(ctx, func(tx store.Ops) error {
			if _, err := tx.Get(ctx, "bench", fmt.Sprint(i)); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if _, err := tx.Append(ctx, "log", []byte("r")); err != nil {
				return err
			}
			return tx.Put(ctx, "bench", fmt.Sprint(i), []byte("v"))
		}); err != nil {
			b.Fatal(err)
		}
	}
}
