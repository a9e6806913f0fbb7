package node

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/store"
	"github.com/keymesh/keymesh/internal/store/postgres"
	"github.com/keymesh/keymesh/internal/store/sqlite"
)

// OpenStore opens the database that cfg.Store chooses: SQLite in
// cfg.DataDir (StoreFile) by default, or PostgreSQL at cfg.Store.DSN. The
// caller migrates and closes it.
func OpenStore(ctx context.Context, cfg *config.Node) (store.Store, error) {
	switch b := cfg.Store.BackendName(); b {
	case config.StoreSQLite:
		db, err := sqlite.Open(filepath.Join(cfg.DataDir, StoreFile))
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		return db, nil
	case config.StorePostgres:
		db, err := postgres.Open(ctx, cfg.Store.DSN)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		return db, nil
	default:
		return nil, fmt.Errorf("node: unknown store backend %q", b)
	}
}
