package node

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
)

// Release authorisation (docs/enclave.md, "Upgrades the cluster approves"):
// migrate-out hands the node's secrets only to a build that t of the
// cluster's n nodes approved, each by signing an attest.Release with its
// identity key, which only its enclave can unseal.

// ApproveRelease signs, with the identity key of the node cfg (unsealed by
// this build's enclave; the node may be running or stopped), an approval of
// measurement m for the node's cluster and platform, valid for validity
// from now. It changes nothing in the data dir.
func ApproveRelease(cfg *config.Node, m enclave.Measurement, validity time.Duration, now time.Time) (*attest.Approval, error) {
	if validity <= 0 || validity > attest.MaxReleaseValidity {
		return nil, fmt.Errorf("node: release validity %v: must be positive and at most %v", validity, attest.MaxReleaseValidity)
	}
	b, err := OpenEnclave(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	id, err := openIdentity(cfg, b)
	if err != nil {
		return nil, err
	}
	defer id.Destroy()
	a, err := attest.SignRelease(&attest.Release{
		ClusterID: cfg.ClusterID, Platform: b.Platform(), Measurement: m,
		Issued: now, Expires: now.Add(validity),
	}, id)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return a, nil
}

// openIdentity unseals the identity key of cfg's data dir with b, read-only.
func openIdentity(cfg *config.Node, b enclave.Backend) (*config.Identity, error) {
	label, err := identityLabel(cfg)
	if err != nil {
		return nil, err
	}
	id, err := config.OpenIdentity(cfg.DataDir, b, label)
	var me *enclave.MeasurementError
	if isUnsealRefusal(err) {
		return nil, errRosterChanged(cfg)
	}
	if errors.As(err, &me) {
		return nil, fmt.Errorf("node: the identity key in %s is sealed by build %s and this binary is %s: run this command with the binary that runs the node",
			cfg.DataDir, me.SealedTo, me.Running)
	}
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return id, nil
}

// Roster is the cluster as the node cfg knows it, for verifying release
// approvals: its cluster id and threshold, its own identity self and its
// peers' identity keys.
func Roster(cfg *config.Node, platform string, self ed25519.PublicKey) (attest.Roster, error) {
	r := attest.Roster{ClusterID: cfg.ClusterID, Platform: platform, Threshold: cfg.Threshold, Identities: []ed25519.PublicKey{self}}
	for _, p := range cfg.Peers {
		k, err := p.PublicKey()
		if err != nil {
			return attest.Roster{}, fmt.Errorf("node: peer %d: %w", p.ID, err)
		}
		r.Identities = append(r.Identities, k)
	}
	return r, nil
}
