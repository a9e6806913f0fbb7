package store

import (
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	good := fstest.MapFS{
		"m/0002_second.sql": {Data: []byte("B")},
		"m/0001_first.sql":  {Data: []byte("A")},
		"m/README":          {Data: []byte("ignored")},
	}
	ms, err := LoadMigrations(good, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[0].SQL != "A" || ms[1].Version != 2 || ms[1].Name != "0002_second.sql" {
		t.Fatalf("got %+v", ms)
	}

	bad := map[string]fstest.MapFS{
		"gap":       {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"duplicate": {"m/0001_a.sql": {}, "m/0001_b.sql": {}},
		"no number": {"m/first.sql": {}},
		"zero":      {"m/0000_a.sql": {}},
		"no start":  {"m/0002_a.sql": {}},
	}
	for name, fsys := range bad {
		if _, err := LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
