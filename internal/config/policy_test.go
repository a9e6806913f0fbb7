package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/record"
)

// devKey returns a deterministic developer key in its String form.
func devKey(i byte) string {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{i}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	return "ed25519:" + base64.RawURLEncoding.EncodeToString(pub)
}

// policyNode is validNode with every policy field set.
func policyNode() *Node {
	n := validNode()
	n.Production = true
	n.NodeHosts = []string{"127.0.0.1", "node3.example"}
	n.Admission = &Admission{Policy: AdmissionApproved, DeveloperKeys: []string{devKey(7), devKey(8)}}
	return n
}

func mustValid(t *testing.T, n *Node) *Node {
	t.Helper()
	if err := n.Validate(); err != nil {
		t.Fatalf("test config does not validate: %v", err)
	}
	return n
}

// TestPolicyDigestFields: the digest changes with each cluster-wide policy
// field (and Diff names it), and not with any per-node field nor with a
// different spelling of the same policy.
func TestPolicyDigestFields(t *testing.T) {
	base := mustValid(t, policyNode())
	want := base.PolicyDigest()

	changes := map[string]func(n *Node){
		"cluster_id": func(n *Node) { n.ClusterID = "km-other" },
		"threshold":  func(n *Node) { n.Threshold = 3 },
		"nodes": func(n *Node) {
			n.Peers = append(n.Peers, Peer{ID: 4, PeerAddr: "127.0.0.1:7107", APIURL: "http://127.0.0.1:7106", IdentityKey: testKey(4)})
		},
		"production": func(n *Node) { n.Production = false },
		"node_hosts": func(n *Node) { n.NodeHosts = append(n.NodeHosts, "node9.example") },
		"admission":  func(n *Node) { n.Admission = nil },
		"developer_keys": func(n *Node) {
			n.Admission = &Admission{Policy: AdmissionApproved, DeveloperKeys: []string{devKey(7)}}
		},
	}
	for field, change := range changes {
		n := policyNode()
		change(n)
		mustValid(t, n)
		if n.PolicyDigest() == want {
			t.Errorf("%s changed: digest unchanged", field)
		}
		d := base.Policy().Diff(n.Policy())
		switch field {
		case "admission": // open takes no keys: both differ
			if !slices.Equal(d, []string{"admission", "developer_keys"}) {
				t.Errorf("%s changed: Diff = %v", field, d)
			}
		case "production": // node_hosts count only in production
			if !slices.Equal(d, []string{"production", "node_hosts"}) {
				t.Errorf("%s changed: Diff = %v", field, d)
			}
		default:
			if !slices.Equal(d, []string{field}) {
				t.Errorf("%s changed: Diff = %v", field, d)
			}
		}
	}

	kem, metrics := KEMX25519, "127.0.0.1:9100"
	same := map[string]func(n *Node){
		"own id and peers (node 2's file)": func(n *Node) {
			n.ID = 2
			n.Peers[0] = Peer{ID: 1, PeerAddr: "127.0.0.1:7101", APIURL: "http://127.0.0.1:7100", IdentityKey: testKey(1)}
		},
		"api_listen":          func(n *Node) { n.APIListen = "0.0.0.0:8100" },
		"peer_listen":         func(n *Node) { n.PeerListen = "0.0.0.0:8101" },
		"data_dir":            func(n *Node) { n.DataDir = "/var/lib/keymesh" },
		"peer addresses":      func(n *Node) { n.Peers[0].PeerAddr = "10.0.0.2:7103"; n.Peers[0].APIURL = "http://127.0.0.1:9999" },
		"peer identity keys":  func(n *Node) { n.Peers[0].IdentityKey = testKey(9) },
		"allow_plaintext":     func(n *Node) { n.AllowPlaintext = true },
		"request_kem":         func(n *Node) { n.RequestKEM = kem },
		"metrics_listen":      func(n *Node) { n.MetricsListen = metrics },
		"store":               func(n *Node) { n.Store = &StoreConfig{Backend: StoreSQLite} },
		"api_limits":          func(n *Node) { n.APILimits = &APILimits{ClientPerSecond: 5, ClientBurst: 10} },
		"services":            func(n *Node) { n.Services = &Services{ChainIDs: []uint64{1, 5}} },
		"node_hosts spelling": func(n *Node) { n.NodeHosts = []string{"NODE3.example.", "127.0.0.1", "node3.example"} },
		"developer key order": func(n *Node) { n.Admission.DeveloperKeys = []string{devKey(8), devKey(7)} },
	}
	for name, change := range same {
		n := policyNode()
		change(n)
		mustValid(t, n)
		if got := n.PolicyDigest(); got != want {
			t.Errorf("%s changed: digest %s, want %s (Diff %v)", name, got, want, base.Policy().Diff(n.Policy()))
		}
	}

	// Equivalent spellings outside production: node_hosts are ignored
	// (auth ignores them), a missing admission is the open one.
	a, b := validNode(), validNode()
	a.NodeHosts = []string{"node1.example"}
	b.Admission = &Admission{Policy: AdmissionOpen}
	if a.PolicyDigest() != b.PolicyDigest() {
		t.Errorf("dev configs with the same effect: %s vs %s (Diff %v)", a.PolicyDigest(), b.PolicyDigest(), a.Policy().Diff(b.Policy()))
	}
}

// TestPolicyDigestCluster: cluster init gives every node's file the same
// digest (each file names another node as itself).
func TestPolicyDigestCluster(t *testing.T) {
	k, err := record.GenerateKey(record.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := InitCluster(InitOptions{Nodes: 4, Threshold: 3, Out: t.TempDir(), BasePort: 1, SkipPortCheck: true,
		Admission: &Admission{Policy: AdmissionApproved, DeveloperKeys: []string{k.Public().String()}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfgs[1:] {
		if c.PolicyDigest() != cfgs[0].PolicyDigest() {
			t.Fatalf("node %d's digest %s differs from node 1's %s: %v", c.ID, c.PolicyDigest(), cfgs[0].PolicyDigest(), cfgs[0].Policy().Diff(c.Policy()))
		}
	}
}

// TestPolicyDigestKnownAnswer pins the statement and digest of one
// policy: a change to the encoding must come with a new domain version.
func TestPolicyDigestKnownAnswer(t *testing.T) {
	n := mustValid(t, policyNode())
	n.NodeHosts = []string{"Node3.Example.", "127.0.0.1"}
	p := n.Policy()
	if !slices.Equal(p.NodeHosts, []string{"127.0.0.1", "node3.example"}) || p.Admission != AdmissionApproved || len(p.DeveloperKeys) != 2 {
		t.Fatalf("canonical policy %+v", p)
	}
	k0, _ := record.ParsePublicKey(p.DeveloperKeys[0])
	k1, _ := record.ParsePublicKey(p.DeveloperKeys[1])
	if bytes.Compare(k0.Key, k1.Key) >= 0 {
		t.Fatal("developer keys not in ascending order")
	}
	// The statement, spelled out field by field.
	want := "4b4d504f4c49435901" + // "KMPOLICY\x01"
		"07" + hex.EncodeToString([]byte("km-test")) +
		"0002" + // threshold
		"0003" + "0001" + "0002" + "0003" + // node ids
		"01" + // production
		"00000002" + "00000009" + hex.EncodeToString([]byte("127.0.0.1")) + "0000000d" + hex.EncodeToString([]byte("node3.example")) +
		"01" + // approved
		"00000002" + "0220" + hex.EncodeToString(k0.Key) + "0220" + hex.EncodeToString(k1.Key)
	if got := hex.EncodeToString(p.Statement()); got != want {
		t.Logf("%s", got)
		t.Fatalf("statement\n got %s\nwant %s", got, want)
	}
	// SHA-256 of the statement, computed apart (xxd -r -p | sha256sum).
	const wantDigest = "11686b2f360c19e8ad432a57b0cfedd9d5f689ce8c75da9708b31b44d731f03d"
	if got := p.Digest().String(); got != wantDigest {
		t.Fatalf("digest %s, want %s", got, wantDigest)
	}
	if d, err := ParsePolicyDigest(wantDigest); err != nil || d != p.Digest() {
		t.Fatalf("ParsePolicyDigest: %v", err)
	}
	for _, bad := range []string{"", "00", strings.ToUpper(wantDigest), wantDigest + "00", "zz" + wantDigest[2:]} {
		if _, err := ParsePolicyDigest(bad); err == nil {
			t.Errorf("ParsePolicyDigest(%q) accepted", bad)
		}
	}
}

// decodeStatement reads a policy statement back, strictly: the fuzz test
// checks that every statement decodes to the policy it came from, so that
// no two policies share one (the encoding is injective).
func decodeStatement(st []byte) (Policy, error) {
	var p Policy
	bad := errors.New("bad statement")
	r := bytes.NewReader(st)
	take := func(n int) []byte {
		if n > r.Len() {
			return nil
		}
		b := make([]byte, n)
		r.Read(b)
		return b
	}
	u8 := func() int {
		b := take(1)
		if b == nil {
			return -1
		}
		return int(b[0])
	}
	u16 := func() int {
		b := take(2)
		if b == nil {
			return -1
		}
		return int(binary.BigEndian.Uint16(b))
	}
	u32 := func() int {
		b := take(4)
		if b == nil {
			return -1
		}
		return int(binary.BigEndian.Uint32(b))
	}
	if string(take(len(policyDomain))) != policyDomain {
		return p, bad
	}
	l := u8()
	if l < 0 {
		return p, bad
	}
	p.ClusterID = string(take(l))
	p.Threshold = u16()
	nodes := u16()
	if nodes < 0 || p.Threshold < 0 {
		return p, bad
	}
	for range nodes {
		id := u16()
		if id < 0 {
			return p, bad
		}
		p.Nodes = append(p.Nodes, uint16(id))
	}
	switch u8() {
	case 0:
	case 1:
		p.Production = true
	default:
		return p, bad
	}
	p.NodeHosts = []string{}
	hosts := u32()
	if hosts < 0 || hosts > r.Len() {
		return p, bad
	}
	for range hosts {
		l := u32()
		h := take(l)
		if l < 0 || h == nil {
			return p, bad
		}
		p.NodeHosts = append(p.NodeHosts, string(h))
	}
	switch u8() {
	case 0:
		p.Admission = AdmissionOpen
	case 1:
		p.Admission = AdmissionApproved
	default:
		return p, bad
	}
	p.DeveloperKeys = []string{}
	keys := u32()
	if keys < 0 || keys > r.Len() {
		return p, bad
	}
	for range keys {
		alg, l := u8(), u8()
		key := take(l)
		if alg < 0 || l < 0 || key == nil {
			return p, bad
		}
		p.DeveloperKeys = append(p.DeveloperKeys, record.PublicKey{Alg: record.Alg(alg), Key: key}.String())
	}
	if r.Len() != 0 {
		return p, bad
	}
	return p, nil
}

// FuzzPolicyDigest: for every config Parse accepts, the statement decodes
// back to exactly its canonical policy, the digest is its SHA-256, and
// the policy survives the config's JSON round trip.
func FuzzPolicyDigest(f *testing.F) {
	f.Add(mustJSON(f, validNode()))
	f.Add(mustJSON(f, policyNode()))
	dev := policyNode()
	dev.Production = false
	f.Add(mustJSON(f, dev))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data)
		if err != nil {
			return
		}
		p := n.Policy()
		st := p.Statement()
		back, err := decodeStatement(st)
		if err != nil {
			t.Fatalf("statement %x does not decode: %v", st, err)
		}
		if d := p.Diff(back); len(d) != 0 {
			t.Fatalf("statement decodes to another policy (%v):\n%+v\n%+v", d, p, back)
		}
		if p.Digest() != sha256.Sum256(st) {
			t.Fatal("digest is not SHA-256 of the statement")
		}
		again, err := Parse(mustJSON(t, n))
		if err != nil {
			t.Fatal(err)
		}
		if again.PolicyDigest() != p.Digest() {
			t.Fatal("the JSON round trip changed the policy digest")
		}
	})
}

// FuzzParsePolicyDigest: a peer's certificate carries the digest as text;
// ParsePolicyDigest takes exactly String's form and nothing else.
func FuzzParsePolicyDigest(f *testing.F) {
	f.Add(policyNode().PolicyDigest().String())
	f.Add("")
	f.Add(strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParsePolicyDigest(s)
		if err != nil {
			if d != (PolicyDigest{}) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error %v with digest %s", err, d)
			}
			return
		}
		if d.String() != s {
			t.Fatalf("%q parsed to %s", s, d)
		}
	})
}
