package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/store/postgres"
)

// TestPostgresStore starts a node whose config chooses PostgreSQL: its
// state lands in the configured schema of the real server.
func TestPostgresStore(t *testing.T) {
	dsn := os.Getenv("KEYMESH_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("PostgreSQL tests need a server: set KEYMESH_TEST_POSTGRES, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable (scripts/test sets it when one answers on 127.0.0.1:5432)")
	}
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "km_test_node_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) }) // after the drop below
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

	dir := t.TempDir()
	cfgs, err := config.InitCluster(config.InitOptions{Nodes: DevNodes, Threshold: DevThreshold, Out: dir, BasePort: 1, SkipPortCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cfgs[0]
	cfg.Store = &config.StoreConfig{Backend: config.StorePostgres, DSN: u.String()}
	start := func() *Node {
		t.Helper()
		n, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0"), AllowPlaintext: true})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := start()
	if _, ok := n.Store().(*postgres.DB); !ok {
		t.Fatalf("store is %T", n.Store())
	}
	n.Close()
	n = start() // second start: same identity check, one more start record
	defer n.Close()
	var starts int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.records WHERE stream = 'node/starts'::bytea`).Scan(&starts); err != nil {
		t.Fatal(err)
	}
	if starts != 2 {
		t.Fatalf("%d start records in the schema, want 2", starts)
	}
	if _, err := os.Stat(cfg.DataDir + "/" + StoreFile); err == nil {
		t.Fatal("a SQLite file was created too")
	}

	// An enclave migration moves the sealed secrets kept in PostgreSQL (the
	// request keys made by the first attestation), not only the identity
	// file: it opens the store the config names.
	if _, err := n.Attestation(ctx, nil); err != nil {
		t.Fatal(err)
	}
	n.Close()
	var sealedRows int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.kv WHERE ns = $1::bytea`, []byte(enclaveNS)).Scan(&sealedRows); err != nil {
		t.Fatal(err)
	}
	if sealedRows == 0 {
		t.Fatalf("no sealed request keys in the PostgreSQL store")
	}
	in, req, err := StartMigrateIn(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	bundle, moved, err := MigrateOut(ctx, cfg, req, in.Measurement(), approveAll(t, cfgs, in.Measurement()))
	if err != nil {
		t.Fatal(err)
	}
	if moved != 1+sealedRows { // the identity file and every sealed key in the store
		t.Fatalf("MigrateOut moved %d secrets, want the identity and %d sealed keys", moved, sealedRows)
	}
	if got, err := in.Finish(ctx, bundle, in.Measurement()); err != nil || got != moved {
		t.Fatalf("Finish: %d, %v", got, err)
	}
	if _, err := os.Stat(cfg.DataDir + "/" + StoreFile); err == nil {
		t.Fatal("the migration created a SQLite file")
	}
	n = start() // the node starts from its migrated secrets
	defer n.Close()

	// A server that does not answer: a clear error, no password in it.
	cfg.Store.DSN = "postgres://keymesh@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	_, err = New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		APIListener: listen(t, "127.0.0.1:0"), PeerListener: listen(t, "127.0.0.1:0"), AllowPlaintext: true})
	if err == nil || !strings.Contains(err.Error(), "postgres") {
		t.Fatalf("New with an unreachable database: %v", err)
	}
}
