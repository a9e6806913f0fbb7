package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
)

// Pins that persist across CLI runs (issue 14, finding 4). A sealing
// command pins the node's measurement, identity and platform roots:
//
//   - in the credentials file (--creds), for the node at its url: `--seal`
//     records them there on first use, and `account create --dev-setup
//     --seal` writes them with the rest;
//   - else in the known-nodes file (--known-nodes, $KEYMESH_KNOWN_NODES,
//     default ~/.keymesh/known_nodes.json; client.KnownNodes), one entry per
//     node URL, like SSH's known_hosts.
//
// A node that later reports another measurement is refused, with a message
// naming both builds and how to accept the new one: the cluster's release
// authorisation (--release FILE for each approval by t nodes, `keymesh
// enclave approve-release`, checked against the cluster roster, --cluster
// FILE or the credentials file's "cluster"). Accepted, the new measurement
// replaces the pin.

// defaultKnownNodes is the known-nodes file when neither --known-nodes nor
// a credentials file says where pins go.
func defaultKnownNodes() string {
	if p := os.Getenv("KEYMESH_KNOWN_NODES"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".keymesh", "known_nodes.json")
}

// readCredsFile decodes a credentials file strictly.
func readCredsFile(path string) (*credsFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f credsFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("credentials file %s: not a JSON object of the expected shape: %v", path, jsonReason(err))
	}
	return &f, nil
}

// credsPins is a client.PinStore in a credentials file: the pin of the
// file's node (its url), kept in measurements, nodeIdentity and
// platformKeys. Other URLs have no pin there and are not recorded (a
// command that talks to several nodes pins them with --known-nodes).
type credsPins struct{ path string }

func sameURL(a, b string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/") }

func (p *credsPins) LoadPin(url string) (*client.Pin, error) {
	f, err := readCredsFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if len(f.Measurements) != 1 {
		return nil, nil
	}
	// The file's measurement pins the build whichever node the credentials
	// are used with (as before pins were stored); its node identity only
	// the node at its url.
	pin := &client.Pin{Measurement: f.Measurements[0], PlatformKeys: f.PlatformKeys}
	if f.AllowSimulated {
		pin.Platform = enclave.PlatformSim
	}
	if f.URL == "" || sameURL(f.URL, url) {
		pin.NodeIdentity = f.NodeIdentity
	}
	return pin, nil
}

func (p *credsPins) StorePin(url string, pin client.Pin) error {
	f, err := readCredsFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // being created (account create --dev-setup writes the pin itself)
	}
	if err != nil {
		return err
	}
	if f.URL != "" && !sameURL(f.URL, url) {
		return nil
	}
	f.Measurements = []string{pin.Measurement}
	f.NodeIdentity = pin.NodeIdentity
	f.AllowSimulated = pin.Platform == enclave.PlatformSim
	if len(pin.PlatformKeys) > 0 {
		f.PlatformKeys = pin.PlatformKeys
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".creds-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p.path)
}

// releaseTrust reads --release approvals and the cluster roster they are
// checked against (--cluster FILE, else the credentials file's cluster).
func (c *creds) releaseTrust() (*client.ReleaseTrust, error) {
	if len(c.releases) == 0 {
		return nil, nil
	}
	roster := c.loaded.Cluster
	if c.clusterFile != "" {
		b, err := os.ReadFile(c.clusterFile)
		if err != nil {
			return nil, fmt.Errorf("--cluster: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var r config.Roster
		if err := dec.Decode(&r); err != nil {
			return nil, fmt.Errorf("--cluster %s: %v", c.clusterFile, err)
		}
		roster = &r
	}
	if roster == nil {
		return nil, fmt.Errorf("--release needs the cluster's roster to check the approvals against: --cluster FILE (the %s that keymesh cluster init writes) or \"cluster\" in the credentials file", config.RosterFile)
	}
	rt := &client.ReleaseTrust{ClusterID: roster.ClusterID, Threshold: roster.Threshold, Identities: roster.Identities}
	for _, p := range c.releases {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--release: %w", err)
		}
		rt.Approvals = append(rt.Approvals, b)
	}
	return rt, nil
}

// devRoster returns the roster in the dev cluster directory, or nil.
func devRoster(dir string) *config.Roster {
	b, err := os.ReadFile(filepath.Join(dir, config.RosterFile))
	if err != nil {
		return nil
	}
	var r config.Roster
	if json.Unmarshal(b, &r) != nil || r.ClusterID == "" {
		return nil
	}
	return &r
}
