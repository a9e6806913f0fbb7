package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFilesOwnerOnly (issue 16): the database holds sealed shares and
// every record; keymesh.db was created 0644 (SQLite's default), and its
// -wal and -shm files with it. Now all three are 0600 whatever the umask,
// and a database created before is made owner-only when opened.
func TestFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	check := func(path string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if m := st.Mode().Perm(); m != 0o600 {
				t.Errorf("%s: mode %#o, want 0600", filepath.Base(p), m)
			}
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "keymesh.db")
	db := open(t, path)
	if err := db.Put(context.Background(), "ns", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	check(path) // open: the -wal and -shm files exist
	db.Close()

	// A database left 0644 by an older keymesh.
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	db = open(t, path)
	if err := db.Put(context.Background(), "ns", "k2", []byte("v")); err != nil {
		t.Fatal(err)
	}
	check(path)
}
