package config

import (
	"strings"
	"testing"
)

func TestStoreConfig(t *testing.T) {
	for _, c := range []struct {
		store *StoreConfig
		want  string // "" accepts; otherwise part of the error
	}{
		{nil, ""},
		{&StoreConfig{}, ""},
		{&StoreConfig{Backend: "sqlite"}, ""},
		{&StoreConfig{Backend: "postgres", DSN: "postgres://keymesh@db:5432/keymesh?sslmode=verify-full&search_path=node1"}, ""},
		{&StoreConfig{Backend: "postgres", DSN: "host=db user=keymesh dbname=keymesh"}, ""},
		{&StoreConfig{Backend: "sqlite", DSN: "postgres://x@db/y"}, "only for the postgres backend"},
		{&StoreConfig{Backend: "mysql"}, `backend "mysql"`},
		{&StoreConfig{Backend: "postgres"}, "needs a dsn"},
		{&StoreConfig{Backend: "postgres", DSN: "postgres://keymesh:hunter2@db/keymesh"}, "holds a password"},
		{&StoreConfig{Backend: "postgres", DSN: "postgres://keymesh@db/keymesh?password=hunter2"}, "holds a password"},
		{&StoreConfig{Backend: "postgres", DSN: "host=db password=hunter2"}, "holds a password"},
		{&StoreConfig{Backend: "postgres", DSN: "postgres://db/x\n"}, "control character"},
		{&StoreConfig{Backend: "postgres", DSN: strings.Repeat("x", maxDSN+1)}, "at most"},
	} {
		n := validNode()
		n.Store = c.store
		_, err := Parse(mustJSON(t, n))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.store, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want %q", c.store, err, c.want)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("error shows the password: %v", err)
		}
	}
	if (*StoreConfig)(nil).BackendName() != StoreSQLite {
		t.Error("default backend is not sqlite")
	}
}
