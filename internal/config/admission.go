package config

import (
	"fmt"
	"slices"

	"github.com/keymesh/keymesh/internal/record"
)

// Admission is the cluster's policy on who may create scopes (issue 16):
// "open" (anyone with a key, the development default; also what a nil
// Admission means) or "approved" (only scope.create records signed by
// one of DeveloperKeys). Cluster-wide like production and node_hosts:
// every node applies replicated scope.create records by it, so every
// node of a cluster must have the same policy and keys, or their states
// diverge (`keymesh cluster init` writes the same to every node).
type Admission struct {
	Policy string `json:"policy"`
	// DeveloperKeys are the approved developer public keys, in the form
	// the CLI prints ("p256:<base64url>" or "ed25519:<base64url>").
	DeveloperKeys []string `json:"developer_keys,omitempty"`
}

// Admission policies (Admission.Policy).
const (
	AdmissionOpen     = "open"
	AdmissionApproved = "approved"
)

// Approved reports whether only approved keys may create scopes.
func (a *Admission) Approved() bool { return a != nil && a.Policy == AdmissionApproved }

// Keys returns the approved developer keys (nil for a nil Admission).
// Only call it on a validated config.
func (a *Admission) Keys() []record.PublicKey {
	if a == nil {
		return nil
	}
	out := make([]record.PublicKey, 0, len(a.DeveloperKeys))
	for _, s := range a.DeveloperKeys {
		if k, err := record.ParsePublicKey(s); err == nil {
			out = append(out, k)
		}
	}
	return out
}

func (a *Admission) check() error {
	if a == nil {
		return nil
	}
	switch a.Policy {
	case AdmissionOpen:
		if len(a.DeveloperKeys) > 0 {
			return fmt.Errorf("policy %q takes no developer_keys (anyone may create scopes); use %q to admit only those keys", AdmissionOpen, AdmissionApproved)
		}
	case AdmissionApproved:
		if len(a.DeveloperKeys) == 0 {
			return fmt.Errorf("policy %q needs developer_keys: the keys allowed to create scopes", AdmissionApproved)
		}
	default:
		return fmt.Errorf("policy %q: want %q or %q", a.Policy, AdmissionOpen, AdmissionApproved)
	}
	var seen []record.PublicKey
	for i, s := range a.DeveloperKeys {
		k, err := record.ParsePublicKey(s)
		if err != nil {
			return fmt.Errorf("developer_keys[%d]: %v", i, err)
		}
		if slices.ContainsFunc(seen, k.Equal) {
			return fmt.Errorf("developer_keys[%d]: %s appears twice", i, s)
		}
		seen = append(seen, k)
	}
	return nil
}
