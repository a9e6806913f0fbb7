package node

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/enclave"
)

// The node's identity key is sealed under a label that names the cluster
// roster it was provisioned for (docs/enclave.md, "The roster is bound to
// the sealed identity"): cluster id, threshold, this node's id and every
// peer's id and identity key. The roster decides whose approvals count for a
// release (Roster, attest.VerifyRelease), and it comes from the node's config
// file, which the operator can edit. Bound into the sealing label, an edited
// roster cannot even unseal the identity: the node does not start, and
// approve-release and migrate-out do not run. Migrations carry the label
// (collectSealed), so the binding survives upgrades.
//
// Peer addresses and URLs are not part of the roster: moving a node to
// another host is an operator's job and changes no trust.

// rosterDomain begins the roster statement that identityLabel hashes.
const rosterDomain = "KMROSTER\x01"

// identityLabel is the sealing label of cfg's identity key:
// enclave.LabelIdentity + "/roster/" + hex(SHA-256(roster statement)), the
// statement being
//
//	"KMROSTER\x01" ‖ u8 len ‖ cluster id ‖ u16 threshold ‖ u16 self id ‖
//	u16 peer count ‖ (u16 peer id ‖ 32 B identity key)* by ascending id
func identityLabel(cfg *config.Node) (string, error) {
	if len(cfg.ClusterID) > 255 {
		return "", fmt.Errorf("node: cluster id of %d bytes: at most 255", len(cfg.ClusterID))
	}
	if cfg.Threshold < 0 || cfg.Threshold > 0xffff || len(cfg.Peers) > 0xffff {
		return "", fmt.Errorf("node: threshold %d or %d peers out of range", cfg.Threshold, len(cfg.Peers))
	}
	peers := slices.Clone(cfg.Peers)
	slices.SortFunc(peers, func(a, b config.Peer) int { return int(a.ID) - int(b.ID) })
	st := []byte(rosterDomain)
	st = append(st, byte(len(cfg.ClusterID)))
	st = append(st, cfg.ClusterID...)
	st = binary.BigEndian.AppendUint16(st, uint16(cfg.Threshold))
	st = binary.BigEndian.AppendUint16(st, cfg.ID)
	st = binary.BigEndian.AppendUint16(st, uint16(len(peers)))
	for _, p := range peers {
		k, err := p.PublicKey()
		if err != nil {
			return "", fmt.Errorf("node: peer %d: %w", p.ID, err)
		}
		st = binary.BigEndian.AppendUint16(st, p.ID)
		st = append(st, k...)
	}
	h := sha256.Sum256(st)
	return enclave.LabelIdentity + "/roster/" + hex.EncodeToString(h[:]), nil
}

// errRosterChanged explains an identity that does not unseal under the
// config's roster.
func errRosterChanged(cfg *config.Node) error {
	return fmt.Errorf("node: the identity key in %s is bound to the cluster roster it was provisioned with, and this config names another one "+
		"(its cluster_id, threshold, id, or a peer's id or identity_key changed): restore the config the node was started with; "+
		"a roster change is a new cluster (docs/enclave.md, \"The roster is bound to the sealed identity\")", cfg.DataDir)
}

// isUnsealRefusal reports whether err is the backend refusing to unseal a
// blob under the given label (wrong label, platform or tampered blob), as
// opposed to a missing file or another build's blob.
func isUnsealRefusal(err error) bool {
	var me *enclave.MeasurementError
	return errors.Is(err, enclave.ErrUnseal) && !errors.As(err, &me)
}
