package attest

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keymesh/keymesh/internal/enclave"
)

// Release authorisation (issue 14, finding 2). A build measurement becomes
// acceptable to a node's migrate-out, and to clients that pinned an older
// one, only when t of the cluster's n nodes approved it: each node's
// operator runs `keymesh enclave approve-release`, which unseals that node's
// identity key inside its enclave and signs a Release statement with it. No
// operator holds another node's identity key, so fewer than t operators
// cannot make an authorisation.
//
// The statement is canonical and versioned:
//
//	"KMRELEASE\x01"
//	‖ u8 len ‖ cluster id
//	‖ u8 len ‖ platform
//	‖ measurement (32 bytes)
//	‖ issued (u64 Unix ms) ‖ expires (u64 Unix ms)
//
// and the identity key signs ReleaseDomain ‖ statement with Ed25519. The
// domain keeps the signature apart from every other use of the identity key
// (TLS 1.3 CertificateVerify begins with 64 spaces, X.509 TBS with 0x30).

const (
	releaseMagic = "KMRELEASE\x01"
	// ReleaseDomain prefixes the signed bytes of a Release statement.
	ReleaseDomain = "keymesh release authorisation v1\x00"
	// MaxReleaseValidity bounds how long one approval may stay valid.
	MaxReleaseValidity = 90 * 24 * time.Hour
	// DefaultReleaseValidity is approve-release's default.
	DefaultReleaseValidity = 7 * 24 * time.Hour
	maxApprovalFile        = 4 << 10
)

// ErrRelease is wrapped by every refusal of a release authorisation.
var ErrRelease = errors.New("attest: release not authorised")

// Release is one node's approval of a build for a cluster.
type Release struct {
	ClusterID   string
	Platform    string
	Measurement enclave.Measurement
	Issued      time.Time
	Expires     time.Time
}

// MarshalBinary encodes r canonically (see the package comment above).
func (r *Release) MarshalBinary() ([]byte, error) {
	if r.ClusterID == "" || len(r.ClusterID) > 255 || r.Platform == "" || len(r.Platform) > 255 {
		return nil, errors.New("attest: release: cluster id and platform must be 1..255 bytes")
	}
	if r.Issued.UnixMilli() < 0 || !r.Expires.After(r.Issued) {
		return nil, errors.New("attest: release: expiry must follow the issue time")
	}
	b := []byte(releaseMagic)
	b = append(b, byte(len(r.ClusterID)))
	b = append(b, r.ClusterID...)
	b = append(b, byte(len(r.Platform)))
	b = append(b, r.Platform...)
	b = append(b, r.Measurement[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Issued.UnixMilli()))
	return binary.BigEndian.AppendUint64(b, uint64(r.Expires.UnixMilli())), nil
}

// UnmarshalBinary decodes r strictly (errors wrap ErrMalformed).
func (r *Release) UnmarshalBinary(data []byte) error {
	bad := func(what string) error { return fmt.Errorf("%w: release statement: %s", ErrMalformed, what) }
	rest, ok := bytes.CutPrefix(data, []byte(releaseMagic))
	if !ok {
		return bad("not a release statement")
	}
	str := func() (string, bool) {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) || rest[0] == 0 {
			return "", false
		}
		s := string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
		return s, true
	}
	cluster, ok1 := str()
	platform, ok2 := str()
	if !ok1 || !ok2 {
		return bad("cluster id or platform")
	}
	if len(rest) != len(enclave.Measurement{})+16 {
		return bad("length")
	}
	var m enclave.Measurement
	copy(m[:], rest)
	rest = rest[len(m):]
	issued, expires := int64(binary.BigEndian.Uint64(rest)), int64(binary.BigEndian.Uint64(rest[8:]))
	if issued < 0 || expires <= issued {
		return bad("times")
	}
	*r = Release{ClusterID: cluster, Platform: platform, Measurement: m, Issued: time.UnixMilli(issued), Expires: time.UnixMilli(expires)}
	return nil
}

// Approval is a signed Release: the file approve-release writes (JSON,
// standard base64 fields).
type Approval struct {
	Statement []byte `json:"statement"` // Release, canonical
	Identity  []byte `json:"identity"`  // the signing node's Ed25519 identity key
	Signature []byte `json:"signature"` // Ed25519 over ReleaseDomain ‖ Statement
}

// SignRelease signs r with a node's identity key (a crypto.Signer, so that
// the key stays inside config.Identity).
func SignRelease(r *Release, id crypto.Signer) (*Approval, error) {
	st, err := r.MarshalBinary()
	if err != nil {
		return nil, err
	}
	pub, ok := id.Public().(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("attest: release: the identity is not an Ed25519 key")
	}
	sig, err := id.Sign(nil, append([]byte(ReleaseDomain), st...), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("attest: release: %w", err)
	}
	return &Approval{Statement: st, Identity: bytes.Clone(pub), Signature: sig}, nil
}

// ParseApproval decodes an approval file strictly (unknown fields, trailing
// data and oversized files are errors wrapping ErrMalformed).
func ParseApproval(data []byte) (*Approval, error) {
	if len(data) > maxApprovalFile {
		return nil, fmt.Errorf("%w: approval of %d bytes", ErrMalformed, len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var a Approval
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("%w: approval: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: approval: trailing data", ErrMalformed)
	}
	if len(a.Identity) != ed25519.PublicKeySize || len(a.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: approval: identity or signature length", ErrMalformed)
	}
	return &a, nil
}

// Roster is what a verifier knows about the cluster, from its own
// configuration: the cluster id, the threshold t and every node's identity
// key.
type Roster struct {
	ClusterID  string
	Platform   string // the platform the release must be for (enclave.PlatformSim, …)
	Threshold  int
	Identities []ed25519.PublicKey
}

// VerifyRelease returns nil if at least r.Threshold distinct nodes of the
// roster approved measurement m for r's cluster and platform, each with a
// statement valid at now. Approvals that do not count (another cluster,
// platform or measurement, expired or not yet issued, a signer outside the
// roster, a bad signature, a second approval by one node) are skipped, and
// the error, wrapping ErrRelease, says how many counted and why the others
// did not.
func VerifyRelease(approvals []*Approval, r Roster, m enclave.Measurement, now time.Time) error {
	if r.Threshold < 1 || r.Threshold > len(r.Identities) {
		return fmt.Errorf("%w: threshold %d of %d nodes", ErrRelease, r.Threshold, len(r.Identities))
	}
	counted := map[string]bool{}
	var reasons []string
	for i, a := range approvals {
		if err := checkApproval(a, r, m, now); err != nil {
			reasons = append(reasons, fmt.Sprintf("approval %d: %v", i+1, err))
			continue
		}
		if counted[string(a.Identity)] {
			reasons = append(reasons, fmt.Sprintf("approval %d: a second approval by node %s", i+1, base64.StdEncoding.EncodeToString(a.Identity)))
			continue
		}
		counted[string(a.Identity)] = true
	}
	if len(counted) >= r.Threshold {
		return nil
	}
	msg := fmt.Sprintf("measurement %s has %d valid approval(s) from the nodes of cluster %s, %d needed", m, len(counted), r.ClusterID, r.Threshold)
	for _, s := range reasons {
		msg += "; " + s
	}
	return fmt.Errorf("%w: %s", ErrRelease, msg)
}

func checkApproval(a *Approval, r Roster, m enclave.Measurement, now time.Time) error {
	if a == nil {
		return errors.New("missing")
	}
	member := false
	for _, id := range r.Identities {
		if bytes.Equal(id, a.Identity) {
			member = true
		}
	}
	if !member {
		return fmt.Errorf("signed by %s, not a node of the cluster", base64.StdEncoding.EncodeToString(a.Identity))
	}
	if len(a.Signature) != ed25519.SignatureSize || !ed25519.Verify(ed25519.PublicKey(a.Identity), append([]byte(ReleaseDomain), a.Statement...), a.Signature) {
		return errors.New("bad signature")
	}
	var st Release
	if err := st.UnmarshalBinary(a.Statement); err != nil {
		return err
	}
	switch {
	case st.ClusterID != r.ClusterID:
		return fmt.Errorf("for cluster %q", st.ClusterID)
	case r.Platform != "" && st.Platform != r.Platform:
		return fmt.Errorf("for platform %q", st.Platform)
	case !st.Measurement.Equal(m):
		return fmt.Errorf("for measurement %s", st.Measurement)
	case !now.Before(st.Expires):
		return fmt.Errorf("expired at %s", st.Expires.UTC().Format(time.RFC3339))
	case st.Issued.After(now.Add(DefaultMaxSkew)):
		return fmt.Errorf("issued in the future (%s)", st.Issued.UTC().Format(time.RFC3339))
	case st.Expires.Sub(st.Issued) > MaxReleaseValidity:
		return fmt.Errorf("valid for %v, more than %v", st.Expires.Sub(st.Issued), MaxReleaseValidity)
	}
	return nil
}

// ReleasedMeasurement returns the measurement approval a is for (unverified:
// call VerifyRelease before trusting it).
func ReleasedMeasurement(a *Approval) (enclave.Measurement, error) {
	var st Release
	if err := st.UnmarshalBinary(a.Statement); err != nil {
		return enclave.Measurement{}, err
	}
	return st.Measurement, nil
}
