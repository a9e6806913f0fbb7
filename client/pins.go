package client

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/enclave"
)

// Pins that persist (issue 14, finding 4) and builds the cluster approved
// (finding 2), on the client side.
//
// A PinStore keeps what a client verified about a node between runs, like
// SSH's known_hosts: the measurement, the node's identity and the platform
// roots. With Attestation.Pins set and no Measurements configured, the
// client pins the stored measurement; on first use (no pin yet, and
// TrustOnFirstUse) it stores what it verified. A node that later reports
// another measurement is refused with a *PinChangedError, unless the new
// build carries the cluster's release authorisation (Attestation.Release:
// approvals by t of the cluster's n nodes, `keymesh enclave
// approve-release`); the client then accepts it and stores the new pin.

// Pin is what a client remembers about one node.
type Pin struct {
	Measurement  string    `json:"measurement"`            // hex
	Platform     string    `json:"platform,omitempty"`     // "sim", …
	NodeIdentity string    `json:"nodeIdentity,omitempty"` // base64, as in the cluster config
	PlatformKeys []string  `json:"platformKeys,omitempty"` // hex: the sim roots the quote verified under
	Recorded     time.Time `json:"recorded,omitzero"`
}

// PinStore loads and stores pins by node URL. LoadPin returns (nil, nil)
// for a node it has no pin for. Implementations must be safe for
// concurrent use.
type PinStore interface {
	LoadPin(url string) (*Pin, error)
	StorePin(url string, p Pin) error
}

// ReleaseTrust lets a client accept a build the cluster approved: the
// cluster as the client knows it (from the operator: `keymesh cluster init`
// writes it) and approval files. A measurement approved by Threshold
// distinct nodes of Identities, for ClusterID, each approval unexpired, is
// accepted as if pinned.
type ReleaseTrust struct {
	ClusterID  string
	Threshold  int
	Identities []string // the nodes' identity keys (base64 as in the cluster config, or hex)
	Approvals  [][]byte // approval files (keymesh enclave approve-release)
}

// measurements returns the measurements r authorises at now.
func (r *ReleaseTrust) measurements(now time.Time) ([]enclave.Measurement, error) {
	roster := attest.Roster{ClusterID: r.ClusterID, Threshold: r.Threshold}
	for _, s := range r.Identities {
		k, err := ParseNodeIdentity(s)
		if err != nil {
			return nil, err
		}
		roster.Identities = append(roster.Identities, k)
	}
	var approvals []*attest.Approval
	var candidates []enclave.Measurement
	for i, b := range r.Approvals {
		a, err := attest.ParseApproval(b)
		if err != nil {
			return nil, fmt.Errorf("client: release approval %d: %w", i+1, err)
		}
		approvals = append(approvals, a)
		if m, err := attest.ReleasedMeasurement(a); err == nil && !slices.Contains(candidates, m) {
			candidates = append(candidates, m)
		}
	}
	var out []enclave.Measurement
	var errs []error
	for _, m := range candidates {
		if err := attest.VerifyRelease(approvals, roster, m, now); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("client: %w", errors.Join(errs...))
	}
	return out, nil
}

// PinChangedError: the node reports a measurement other than the one the
// client pinned, and no release authorisation for it was given (or the
// approvals given do not count: Release says why).
type PinChangedError struct {
	URL     string
	Got     string   // hex
	Pinned  []string // hex
	Release error    // why the approvals given did not authorise Got, if any were given
	cause   error    // the *attest.MeasurementError
}

func (e *PinChangedError) Error() string {
	msg := fmt.Sprintf("client: node %s now runs build %s, but build %s is pinned: the node's code changed. "+
		"Accept the new build only with the cluster's release authorisation: approvals of it by t of the cluster's nodes "+
		"(each operator runs `keymesh enclave approve-release --measurement %s`), given as Attestation.Release "+
		"(CLI: --release FILE for each approval, with --cluster FILE)",
		e.URL, e.Got, strings.Join(e.Pinned, " or "), e.Got)
	if e.Release != nil {
		msg += "; the approvals given do not authorise it: " + e.Release.Error()
	}
	return msg
}

func (e *PinChangedError) Unwrap() error { return e.cause }

// pinPolicy applies the stored pin and the release authorisation to p
// (the policy from the configuration) before a verification; it returns the
// stored pin, if any.
func (s *sealer) pinPolicy(url string, p *attest.Policy) (pin *Pin, releaseErr error, err error) {
	var released []enclave.Measurement
	if s.cfg.Release != nil {
		released, releaseErr = s.cfg.Release.measurements(time.Now())
	}
	if s.cfg.Pins != nil && len(s.cfg.Measurements) == 0 {
		if pin, err = s.cfg.Pins.LoadPin(url); err != nil {
			return nil, nil, fmt.Errorf("client: loading the pin of %s: %w", url, err)
		}
		if pin != nil {
			m, err := enclave.ParseMeasurement(pin.Measurement)
			if err != nil {
				return nil, nil, fmt.Errorf("client: stored pin of %s: %w", url, err)
			}
			p.Measurements, p.TrustOnFirstUse = []enclave.Measurement{m}, false
			// A node pinned on the sim backend was accepted as simulated,
			// under the roots pinned with it.
			if pin.Platform == enclave.PlatformSim && (len(pin.PlatformKeys) > 0 || len(p.SimPlatformKeys) > 0) {
				p.AllowSimulated = true
			}
			if p.NodeIdentity == nil && pin.NodeIdentity != "" {
				if p.NodeIdentity, err = ParseNodeIdentity(pin.NodeIdentity); err != nil {
					return nil, nil, fmt.Errorf("client: stored pin of %s: %w", url, err)
				}
			}
			if len(p.SimPlatformKeys) == 0 {
				for _, h := range pin.PlatformKeys {
					k, err := attest.ParseSimPlatformKey(h)
					if err != nil {
						return nil, nil, fmt.Errorf("client: stored pin of %s: %w", url, err)
					}
					p.SimPlatformKeys = append(p.SimPlatformKeys, k)
				}
			}
		}
	}
	if len(released) > 0 {
		if len(p.Measurements) == 0 {
			p.TrustOnFirstUse = false
		}
		p.Measurements = append(p.Measurements, released...)
	}
	return pin, releaseErr, nil
}

// pinResult stores what was verified (res, under policy p) when it differs
// from the stored pin, or explains a refusal: a changed measurement becomes
// a *PinChangedError.
func (s *sealer) pinResult(url string, pin *Pin, releaseErr error, p *attest.Policy, res *attest.Result, verr error) error {
	if verr != nil {
		var me *attest.MeasurementError
		if errors.As(verr, &me) && (pin != nil || len(s.cfg.Measurements) > 0) {
			e := &PinChangedError{URL: url, Got: me.Got.String(), Release: releaseErr, cause: verr}
			for _, m := range me.Pinned {
				e.Pinned = append(e.Pinned, m.String())
			}
			return e
		}
		return verr
	}
	if s.cfg.Pins == nil || len(s.cfg.Measurements) > 0 {
		return nil
	}
	np := Pin{Measurement: res.Measurement.String(), Platform: res.Platform,
		NodeIdentity: encodeIdentity(res.Keys.Identity), Recorded: time.Now().UTC().Truncate(time.Second)}
	for _, k := range p.SimPlatformKeys {
		np.PlatformKeys = append(np.PlatformKeys, hex.EncodeToString(k))
	}
	if pin != nil && pin.Measurement == np.Measurement && pin.NodeIdentity == np.NodeIdentity && slices.Equal(pin.PlatformKeys, np.PlatformKeys) {
		return nil
	}
	if err := s.cfg.Pins.StorePin(url, np); err != nil {
		return fmt.Errorf("client: storing the pin of %s: %w", url, err)
	}
	return nil
}

func encodeIdentity(k []byte) string {
	if len(k) != ed25519.PublicKeySize {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k)
}

// KnownNodes is a PinStore in a JSON file (mode 0600), like SSH's
// known_hosts:
//
//	{"version": 1, "nodes": {"<url>": {"measurement": "<hex>", "platform": "sim",
//	  "nodeIdentity": "<base64>", "platformKeys": ["<hex>"], "recorded": "<RFC 3339>"}}}
//
// Writes go through a temporary file and a rename. A missing file is an
// empty store; a malformed one is an error (never silently replaced).
func KnownNodes(path string) PinStore { return &knownNodes{path: path} }

type knownNodes struct {
	mu   sync.Mutex
	path string
}

type knownNodesFile struct {
	Version int            `json:"version"`
	Nodes   map[string]Pin `json:"nodes"`
}

func (k *knownNodes) read() (*knownNodesFile, error) {
	b, err := os.ReadFile(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &knownNodesFile{Version: 1, Nodes: map[string]Pin{}}, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f knownNodesFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("known-nodes file %s: %v", k.path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("known-nodes file %s: trailing data", k.path)
	}
	if f.Version != 1 {
		return nil, fmt.Errorf("known-nodes file %s: version %d, want 1", k.path, f.Version)
	}
	if f.Nodes == nil {
		f.Nodes = map[string]Pin{}
	}
	return &f, nil
}

func (k *knownNodes) LoadPin(url string) (*Pin, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, err := k.read()
	if err != nil {
		return nil, err
	}
	p, ok := f.Nodes[strings.TrimSuffix(url, "/")]
	if !ok {
		return nil, nil
	}
	return &p, nil
}

func (k *knownNodes) StorePin(url string, p Pin) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	f, err := k.read()
	if err != nil {
		return err
	}
	f.Nodes[strings.TrimSuffix(url, "/")] = p
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(k.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(k.path), ".known-nodes-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), k.path)
}
