package config

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave/sim"
)

// InitOptions are the parameters of `keymesh cluster init`.
type InitOptions struct {
	Nodes     int    // n, 2..MaxNodes
	Threshold int    // t, MinThreshold..n
	Out       string // directory to create the cluster in
	Host      string // address every node listens on and is reached at; default 127.0.0.1
	BasePort  int    // first port; default DefaultBasePort
	ClusterID string // default: "km-" and 16 random hex digits
	// Force allows Out to exist and be non-empty. Existing identity keys in
	// it are kept (LoadOrCreateIdentity, or the public key of a sealed one);
	// node files are rewritten.
	Force bool
	// SkipPortCheck skips the check that every port is free, for callers
	// that will bind the ports themselves right away (tests).
	SkipPortCheck bool
	// Admission is the cluster's scope admission policy, written the same
	// into every node's config; nil is open.
	Admission *Admission
}

// DefaultBasePort is the first port InitCluster assigns.
const DefaultBasePort = 7100

// Ports returns the ports of node i (1-based) under base port base: node i
// serves its API on base+2(i-1) and its peer transport on base+2(i-1)+1, so
// a 3-node cluster at 7100 uses 7100/7101, 7102/7103 and 7104/7105.
func Ports(base, i int) (api, peer int) {
	api = base + 2*(i-1)
	return api, api + 1
}

// InitCluster prepares a cluster of opts.Nodes nodes with ids 1..n in
// opts.Out: it creates each node's data dir Out/node-<id> (mode 0700) and
// its identity key (LoadOrCreateIdentity), and returns the nodes' configs
// with absolute data dirs, ready for WriteCluster. Ports follow Ports.
//
// It refuses an Out that exists and is not empty unless opts.Force is set,
// and a port that is already in use (it tries to listen on each), naming
// the port.
func InitCluster(opts InitOptions) ([]*Node, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.BasePort == 0 {
		opts.BasePort = DefaultBasePort
	}
	if opts.Nodes < 2 || opts.Nodes > MaxNodes {
		return nil, fmt.Errorf("config: %d nodes, need 2..%d", opts.Nodes, MaxNodes)
	}
	if opts.Threshold < MinThreshold || opts.Threshold > opts.Nodes {
		return nil, fmt.Errorf("config: threshold %d, need %d..%d for %d nodes", opts.Threshold, MinThreshold, opts.Nodes, opts.Nodes)
	}
	if _, last := Ports(opts.BasePort, opts.Nodes); opts.BasePort < 1 || last > 65535 {
		return nil, fmt.Errorf("config: base port %d leaves no room for %d ports", opts.BasePort, 2*opts.Nodes)
	}
	if opts.Host != strings.TrimSpace(opts.Host) || strings.ContainsAny(opts.Host, "/@?# ") {
		return nil, fmt.Errorf("config: bad host %q", opts.Host)
	}
	if opts.ClusterID == "" {
		var b [8]byte
		rand.Read(b[:])
		opts.ClusterID = "km-" + hex.EncodeToString(b[:])
	}
	if err := checkClusterID(opts.ClusterID); err != nil {
		return nil, fmt.Errorf("config: cluster id: %w", err)
	}
	if opts.Out == "" {
		return nil, errors.New("config: no output directory")
	}
	out, err := filepath.Abs(opts.Out)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	entries, err := os.ReadDir(out)
	switch {
	case err == nil && len(entries) > 0 && !opts.Force:
		return nil, fmt.Errorf("config: %s exists and is not empty; refusing to overwrite it", out)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("config: %w", err)
	}
	if !opts.SkipPortCheck {
		for i := 1; i <= opts.Nodes; i++ {
			api, peer := Ports(opts.BasePort, i)
			for _, port := range []int{api, peer} {
				if err := portFree(opts.Host, port); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	root, err := provisionSim(out, opts)
	if err != nil {
		return nil, err
	}
	nodes := make([]*Node, opts.Nodes)
	peers := make([]Peer, opts.Nodes)
	for i := range opts.Nodes {
		id := uint16(i + 1)
		api, peer := Ports(opts.BasePort, i+1)
		dir := filepath.Join(out, fmt.Sprintf("node-%d", id))
		pub, err := identityPublicKey(dir)
		if err != nil {
			return nil, err
		}
		nodes[i] = &Node{
			ID:             id,
			ClusterID:      opts.ClusterID,
			Threshold:      opts.Threshold,
			APIListen:      net.JoinHostPort(opts.Host, strconv.Itoa(api)),
			PeerListen:     net.JoinHostPort(opts.Host, strconv.Itoa(peer)),
			DataDir:        dir,
			SimPlatformKey: root,
			Admission:      opts.Admission,
		}
		peers[i] = Peer{
			ID:          id,
			PeerAddr:    net.JoinHostPort(opts.Host, strconv.Itoa(peer)),
			APIURL:      "http://" + net.JoinHostPort(opts.Host, strconv.Itoa(api)),
			IdentityKey: pub,
		}
	}
	for i, n := range nodes {
		for j, p := range peers {
			if i != j {
				n.Peers = append(n.Peers, p)
			}
		}
		if err := n.Validate(); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}

// provisionSim gives every node of the cluster the same sim platform key
// (sim.ProvisionCluster; each keeps its own seal secret) and returns it in
// hex: the root the cluster's clients pin. With opts.Force an existing
// node's platform key is kept, so a cluster keeps its root across a re-init.
func provisionSim(out string, opts InitOptions) (string, error) {
	dirs := make([]string, opts.Nodes)
	for i := range dirs {
		dirs[i] = filepath.Join(out, fmt.Sprintf("node-%d", i+1), sim.DirName)
	}
	root, err := sim.ProvisionCluster(dirs, opts.Force, nil)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	return hex.EncodeToString(root), nil
}

func portFree(host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("config: port %d on %s is not available: %w", port, host, err)
	}
	return ln.Close()
}

// FileName returns the name WriteCluster gives node id's config file.
func FileName(id uint16) string { return fmt.Sprintf("node-%d.json", id) }

// WriteCluster writes each node's config to dir/node-<id>.json (mode 0644:
// it holds no secret), and the cluster's sim platform key, if the nodes
// name one, to dir/attest.SimPlatformKeyFile (0644), for the operator to
// hand to clients. A data dir inside dir is written relative to dir, so
// the directory can be moved as a whole; Load resolves it back.
func WriteCluster(dir string, nodes []*Node) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	for _, n := range nodes {
		if err := n.Validate(); err != nil {
			return fmt.Errorf("config: node %d: %w", n.ID, errors.Unwrap(err))
		}
		c := *n
		if filepath.IsAbs(c.DataDir) {
			if rel, err := filepath.Rel(abs, c.DataDir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				c.DataDir = rel
			}
		}
		data, err := json.MarshalIndent(&c, "", "  ")
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		data = append(data, '\n')
		if err := writeFileAtomic(filepath.Join(abs, FileName(n.ID)), data, 0o644); err != nil {
			return err
		}
	}
	if len(nodes) > 0 && nodes[0].SimPlatformKey != "" {
		for _, n := range nodes {
			if n.SimPlatformKey != nodes[0].SimPlatformKey {
				return fmt.Errorf("config: node %d names another sim platform key than node %d", n.ID, nodes[0].ID)
			}
		}
		if err := writeFileAtomic(filepath.Join(abs, attest.SimPlatformKeyFile), []byte(nodes[0].SimPlatformKey+"\n"), 0o644); err != nil {
			return err
		}
	}
	if r, ok := RosterOf(nodes); ok {
		data, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(abs, RosterFile), append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// RosterFile is the cluster roster WriteCluster writes beside the node
// configs, for clients: what they need to check a release authorisation
// (keymesh enclave approve-release) for a new build.
const RosterFile = "cluster.json"

// Roster is the public description of a cluster that clients keep: its id,
// threshold and every node's identity key (base64, as in the configs).
type Roster struct {
	ClusterID  string   `json:"cluster_id"`
	Threshold  int      `json:"threshold"`
	Identities []string `json:"identities"`
}

// RosterOf returns the roster of a whole cluster's configs (every node's
// identity appears in another node's peers), or false if nodes do not
// describe every node.
func RosterOf(nodes []*Node) (Roster, bool) {
	if len(nodes) == 0 || len(nodes) != nodes[0].N() {
		return Roster{}, false
	}
	r := Roster{ClusterID: nodes[0].ClusterID, Threshold: nodes[0].Threshold}
	keys := map[uint16]string{}
	for _, n := range nodes {
		for _, p := range n.Peers {
			keys[p.ID] = p.IdentityKey
		}
	}
	for _, n := range nodes {
		k, ok := keys[n.ID]
		if !ok {
			return Roster{}, false
		}
		r.Identities = append(r.Identities, k)
	}
	return r, true
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".node-*.tmp")
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr != nil {
		return fmt.Errorf("config: writing %s: %w", path, werr)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
