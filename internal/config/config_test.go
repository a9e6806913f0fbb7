package config

import (
	"github.com/keymesh/keymesh/internal/porttest"

	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// testKey returns a deterministic Ed25519 public key, base64.
func testKey(i byte) string {
	seed := bytes.Repeat([]byte{i}, ed25519.SeedSize)
	return EncodePublicKey(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

func validNode() *Node {
	return &Node{
		ID: 1, ClusterID: "km-test", Threshold: 2,
		APIListen: "127.0.0.1:7100", PeerListen: "127.0.0.1:7101", DataDir: "node-1",
		Peers: []Peer{
			{ID: 2, PeerAddr: "127.0.0.1:7103", APIURL: "http://127.0.0.1:7102", IdentityKey: testKey(2)},
			{ID: 3, PeerAddr: "node3.example:7105", APIURL: "https://node3.example", IdentityKey: testKey(3)},
		},
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseValid(t *testing.T) {
	n, err := Parse(mustJSON(t, validNode()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(n, validNode()) {
		t.Fatalf("got %+v", n)
	}
	if n.N() != 3 || !reflect.DeepEqual(n.IDs(), []uint16{1, 2, 3}) {
		t.Fatalf("N %d IDs %v", n.N(), n.IDs())
	}
	pub, err := n.Peers[0].PublicKey()
	if err != nil || EncodePublicKey(pub) != testKey(2) {
		t.Fatalf("peer key %x, %v", pub, err)
	}
}

func TestParseRejects(t *testing.T) {
	tooMany := validNode()
	tooMany.Peers = nil
	for i := 2; i <= MaxNodes+1; i++ {
		tooMany.Peers = append(tooMany.Peers, Peer{ID: uint16(i), PeerAddr: "h:1", APIURL: "http://h", IdentityKey: testKey(byte(i))})
	}
	cases := []struct {
		name   string
		edit   func(n *Node)
		raw    string // used instead of edit when set
		errHas string
	}{
		{name: "unknown field", raw: `{"id":1,"bogus":true}`, errHas: `unknown field "bogus"`},
		{name: "trailing data", raw: string(mustJSON(t, validNode())) + `{}`, errHas: "trailing data"},
		{name: "not json", raw: `{`, errHas: "unexpected EOF"},
		{name: "id 0", edit: func(n *Node) { n.ID = 0 }, errHas: "not 0"},
		{name: "threshold above n", edit: func(n *Node) { n.Threshold = 4 }, errHas: "threshold 4 exceeds the 3 nodes"},
		{name: "threshold 1", edit: func(n *Node) { n.Threshold = 1 }, errHas: "threshold 1, must be at least 2"},
		{name: "too many nodes", edit: func(n *Node) { *n = *tooMany }, errHas: "17 nodes, at most 16"},
		{name: "peer id 0", edit: func(n *Node) { n.Peers[0].ID = 0 }, errHas: "peers[0]: id must be"},
		{name: "own id among peers", edit: func(n *Node) { n.Peers[1].ID = 1 }, errHas: "this node's own id"},
		{name: "duplicate peer id", edit: func(n *Node) { n.Peers[1].ID = 2 }, errHas: "id 2 appears twice"},
		{name: "duplicate key", edit: func(n *Node) { n.Peers[1].IdentityKey = n.Peers[0].IdentityKey }, errHas: "also the key of peer 2"},
		{name: "short key", edit: func(n *Node) { n.Peers[0].IdentityKey = "AAAA" }, errHas: "3 bytes, an Ed25519 public key has 32"},
		{name: "key not base64", edit: func(n *Node) { n.Peers[0].IdentityKey = "!!" }, errHas: "base64"},
		{name: "key unpadded", edit: func(n *Node) { n.Peers[0].IdentityKey = strings.TrimRight(testKey(2), "=") }, errHas: "base64"},
		{name: "key small order", edit: func(n *Node) { n.Peers[0].IdentityKey = EncodePublicKey(edIdentity()) }, errHas: "small order"},
		{name: "empty cluster id", edit: func(n *Node) { n.ClusterID = "" }, errHas: "cluster_id: empty"},
		{name: "cluster id charset", edit: func(n *Node) { n.ClusterID = "a b" }, errHas: "cluster_id"},
		{name: "empty data dir", edit: func(n *Node) { n.DataDir = "" }, errHas: "data_dir is empty"},
		{name: "api listen no port", edit: func(n *Node) { n.APIListen = "127.0.0.1" }, errHas: "api_listen"},
		{name: "peer listen port 0", edit: func(n *Node) { n.PeerListen = "127.0.0.1:0" }, errHas: "peer_listen"},
		{name: "peer listen port big", edit: func(n *Node) { n.PeerListen = ":65536" }, errHas: "peer_listen"},
		{name: "peer listen port +1", edit: func(n *Node) { n.PeerListen = ":+1" }, errHas: "peer_listen"},
		{name: "peer addr no host", edit: func(n *Node) { n.Peers[0].PeerAddr = ":7103" }, errHas: "peer 2: peer_addr"},
		{name: "api url scheme", edit: func(n *Node) { n.Peers[0].APIURL = "ftp://h" }, errHas: "peer 2: api_url"},
		{name: "api url no host", edit: func(n *Node) { n.Peers[0].APIURL = "http://" }, errHas: "api_url"},
		{name: "api url query", edit: func(n *Node) { n.Peers[0].APIURL = "http://h/?a=b" }, errHas: "api_url"},
		{name: "api url bad port", edit: func(n *Node) { n.Peers[0].APIURL = "http://h:0" }, errHas: "api_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := []byte(c.raw)
			if c.raw == "" {
				n := validNode()
				c.edit(n)
				data = mustJSON(t, n)
			}
			_, err := Parse(data)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("error %q, want it to contain %q", err, c.errHas)
			}
		})
	}
}

func TestLoadResolvesDataDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "node-1.json")
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, mustJSON(t, validNode()), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "sub", "node-1"); n.DataDir != want {
		t.Fatalf("data dir %q, want %q", n.DataDir, want)
	}
	abs := validNode()
	abs.DataDir = "/var/lib/keymesh"
	os.WriteFile(path, mustJSON(t, abs), 0o644)
	if n, err := Load(path); err != nil || n.DataDir != "/var/lib/keymesh" {
		t.Fatalf("absolute data dir: %v %v", n, err)
	}
	bad := validNode()
	bad.Threshold = 9
	os.WriteFile(path, mustJSON(t, bad), 0o644)
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "threshold 9") {
		t.Fatalf("error %v does not name the file and the problem", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestInitWriteLoad(t *testing.T) {
	out := filepath.Join(t.TempDir(), "cluster")
	base := porttest.Block(t, 6)
	nodes, err := InitCluster(InitOptions{Nodes: 3, Threshold: 2, Out: out, BasePort: base})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCluster(out, nodes); err != nil {
		t.Fatal(err)
	}
	keys := map[uint16]string{}
	for i, n := range nodes {
		id := uint16(i + 1)
		if n.ID != id || n.Threshold != 2 || n.N() != 3 {
			t.Fatalf("node %d: %+v", id, n)
		}
		api, peer := Ports(base, i+1)
		if n.APIListen != "127.0.0.1:"+strconv.Itoa(api) || n.PeerListen != "127.0.0.1:"+strconv.Itoa(peer) {
			t.Fatalf("node %d listens on %s / %s", id, n.APIListen, n.PeerListen)
		}
		got, err := Load(filepath.Join(out, FileName(id)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, n) {
			t.Fatalf("loaded %+v\nwant %+v", got, n)
		}
		raw, _ := os.ReadFile(filepath.Join(out, FileName(id)))
		if !bytes.Contains(raw, []byte(`"data_dir": "node-`)) {
			t.Fatalf("data dir not written relative:\n%s", raw)
		}
		fi, err := os.Stat(filepath.Join(n.DataDir, IdentityFile))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("identity file: %v %v", fi, err)
		}
		ident, created, err := LoadOrCreateIdentity(n.DataDir)
		if err != nil || created {
			t.Fatalf("reloading identity: created=%v %v", created, err)
		}
		keys[id] = ident.PublicKeyString()
	}
	if keys[1] == keys[2] || keys[2] == keys[3] || keys[1] == keys[3] {
		t.Fatal("nodes share a key")
	}
	// Every node lists every other with its real key and addresses.
	for _, n := range nodes {
		for _, p := range n.Peers {
			api, peer := Ports(base, int(p.ID))
			if p.IdentityKey != keys[p.ID] || p.PeerAddr != "127.0.0.1:"+strconv.Itoa(peer) || p.APIURL != "http://127.0.0.1:"+strconv.Itoa(api) {
				t.Fatalf("node %d's entry for %d: %+v", n.ID, p.ID, p)
			}
		}
	}

	// A second init into the same directory is refused, unless forced; a
	// forced init keeps the keys.
	if _, err := InitCluster(InitOptions{Nodes: 3, Threshold: 2, Out: out, BasePort: base}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty out dir: %v", err)
	}
	again, err := InitCluster(InitOptions{Nodes: 3, Threshold: 3, Out: out, BasePort: base, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if again[1].Peers[0].IdentityKey != keys[1] || again[0].Threshold != 3 {
		t.Fatal("forced init did not keep the keys or ignored the new threshold")
	}
}

func TestInitRefusesBusyPort(t *testing.T) {
	base := porttest.Block(t, 4)
	// Node 2's peer port is base+3.
	busy := base + 3
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(busy))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out := filepath.Join(t.TempDir(), "c")
	_, err = InitCluster(InitOptions{Nodes: 2, Threshold: 2, Out: out, BasePort: base})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(busy)+" ") {
		t.Fatalf("a busy port: error %v does not name port %d", err, busy)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused init still created %s", out)
	}
}

func TestInitRejectsOptions(t *testing.T) {
	for _, o := range []InitOptions{
		{Nodes: 1, Threshold: 2},
		{Nodes: 17, Threshold: 2},
		{Nodes: 3, Threshold: 1},
		{Nodes: 3, Threshold: 4},
		{Nodes: 3, Threshold: 2, BasePort: 65533},
		{Nodes: 3, Threshold: 2, ClusterID: "no spaces"},
		{Nodes: 3, Threshold: 2, Host: "a/b"},
	} {
		o.Out = filepath.Join(t.TempDir(), "x")
		o.SkipPortCheck = true
		if _, err := InitCluster(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
		if _, err := os.Stat(o.Out); err == nil {
			t.Errorf("%+v: rejected options still created %s", o, o.Out)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(mustJSON(f, validNode()))
	f.Add([]byte(`{"id":1,"bogus":true}`))
	f.Add([]byte(`{"id":1,"cluster_id":"x","threshold":2,"api_listen":":1","peer_listen":":2","data_dir":"d","peers":[{"id":2,"peer_addr":"h:1","api_url":"http://h","identity_key":"` + testKey(9) + `"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data)
		if err != nil {
			if n != nil {
				t.Fatal("error with a result")
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		if n.Validate() != nil {
			t.Fatal("Parse returned a config that does not validate")
		}
		again, err := Parse(mustJSON(t, n))
		if err != nil {
			t.Fatalf("re-encoded config rejected: %v", err)
		}
		if !reflect.DeepEqual(n, again) {
			t.Fatal("round trip changed the config")
		}
	})
}

func hexKey(s string) ed25519.PublicKey {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func edIdentity() ed25519.PublicKey {
	return hexKey("0100000000000000000000000000000000000000000000000000000000000000")
}
