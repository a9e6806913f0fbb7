package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Store backends (StoreConfig.Backend).
const (
	StoreSQLite   = "sqlite"   // embedded, in the data dir (the default)
	StorePostgres = "postgres" // PostgreSQL at StoreConfig.DSN
)

// maxDSN bounds a connection string.
const maxDSN = 4096

// StoreConfig chooses a node's database. Absent (nil) or with an empty
// Backend it is SQLite in the data dir.
//
//	"store": {"backend": "postgres", "dsn": "postgres://keymesh@db.internal:5432/keymesh?sslmode=verify-full"}
//
// The DSN is a pgx/libpq connection string (URL or key=value). It must
// not hold a password, since the config file is not a secret (mode 0644):
// give the password with PGPASSWORD or a password file (PGPASSFILE,
// ~/.pgpass). To keep several nodes in one database, give each its own
// schema with search_path (e.g. "...&search_path=node1"; the schema must
// exist).
type StoreConfig struct {
	Backend string `json:"backend"`
	DSN     string `json:"dsn,omitempty"`
}

// BackendName returns the backend, with the default filled in.
func (s *StoreConfig) BackendName() string {
	if s == nil || s.Backend == "" {
		return StoreSQLite
	}
	return s.Backend
}

var kvPassword = regexp.MustCompile(`(^|\s)password\s*=`)

func (s *StoreConfig) check() error {
	switch s.BackendName() {
	case StoreSQLite:
		if s != nil && s.DSN != "" {
			return errors.New("dsn is only for the postgres backend (sqlite lives in data_dir)")
		}
		return nil
	case StorePostgres:
	default:
		return fmt.Errorf("backend %q: want %q or %q", s.Backend, StoreSQLite, StorePostgres)
	}
	dsn := s.DSN
	switch {
	case dsn == "":
		return errors.New("the postgres backend needs a dsn")
	case len(dsn) > maxDSN:
		return fmt.Errorf("dsn of %d bytes, at most %d", len(dsn), maxDSN)
	case strings.ContainsAny(dsn, "\x00\n\r"):
		return errors.New("dsn holds a control character")
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return errors.New("dsn is not a valid URL") // url's error would repeat the DSN
		}
		if _, has := u.User.Password(); has || u.Query().Has("password") {
			return errors.New("dsn holds a password: the config file is not secret; use PGPASSWORD or a .pgpass file")
		}
		return nil
	}
	if kvPassword.MatchString(dsn) {
		return errors.New("dsn holds a password: the config file is not secret; use PGPASSWORD or a .pgpass file")
	}
	return nil
}
