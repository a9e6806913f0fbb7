package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keymesh/keymesh/api"
	"github.com/keymesh/keymesh/internal/oprf"
)

// UIDKey is a scope's UID public key (the threshold OPRF key of the
// identity service): the key and every node's verification share, checked
// to lie on one polynomial. Compare keys from several nodes (Equal), or
// pin one: the node that answers could lie about it.
type UIDKey struct {
	scope string
	pub   *oprf.PublicKey
	raw   []byte
}

// ParseUIDKey parses the encoding of scope's public key (api.UIDKey's
// PublicKey, base64url-decoded) strictly.
func ParseUIDKey(scope string, b []byte) (*UIDKey, error) {
	pub, err := oprf.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("client: uid key: %w", err)
	}
	return &UIDKey{scope: scope, pub: pub, raw: slices.Clone(b)}, nil
}

// Scope is the key's scope.
func (k *UIDKey) Scope() string { return k.scope }

// Bytes is the key's encoding (oprf.PublicKey.MarshalBinary).
func (k *UIDKey) Bytes() []byte { return slices.Clone(k.raw) }

// Threshold is t: the number of valid partial evaluations a UID needs.
func (k *UIDKey) Threshold() int { return k.pub.Threshold() }

// Nodes are the ids of the nodes holding shares.
func (k *UIDKey) Nodes() []uint16 { return k.pub.IDs() }

// Equal reports whether two keys are the same key of the same scope, with
// the same verification shares.
func (k *UIDKey) Equal(o *UIDKey) bool {
	return o != nil && k.scope == o.scope && k.pub.Equal(o.pub)
}

func (c *Client) uidKey(scope string, res *api.UIDKey) (*UIDKey, error) {
	if res.Scope != scope {
		return nil, fmt.Errorf("client: the node answered the key of scope %s, not %s", res.Scope, scope)
	}
	b, err := base64.RawURLEncoding.DecodeString(res.PublicKey)
	if err != nil {
		return nil, errors.New("client: uid key: publicKey is not base64url")
	}
	return ParseUIDKey(scope, b)
}

// UIDCreateKey has the nodes make scope's UID key (keymesh_uidCreateKey):
// a key generation among all n nodes, each of which checks the approval
// itself. ap must approve as account of scope, with the scope's
// developer's key among the approvals (DeveloperSigner; in a user-mode
// scope, HybridApprover with the user's signer too). A scope has one key:
// a second call fails with api.CodeAuthConflict.
func (c *Client) UIDCreateKey(ctx context.Context, ap Approver, scope, account string) (*UIDKey, error) {
	op := Operation{Scope: scope, Account: account, Method: api.MethodUIDCreateKey,
		Hash: api.UIDOperationHash(api.MethodUIDCreateKey, scope, nil)}
	var res api.UIDKey
	if err := call(ctx, c, ap, op, api.UIDCreateKeyParams{Scope: scope, Account: account}, &res); err != nil {
		return nil, err
	}
	return c.uidKey(scope, &res)
}

// UIDPublicKey returns the node's copy of scope's UID key
// (keymesh_uidPublicKey).
func (c *Client) UIDPublicKey(ctx context.Context, scope string) (*UIDKey, error) {
	var res api.UIDKey
	if err := c.Call(ctx, api.MethodUIDPublicKey, api.UIDPublicKeyParams{Scope: scope}, &res); err != nil {
		return nil, err
	}
	return c.uidKey(scope, &res)
}

// UIDResult is a computed UID.
type UIDResult struct {
	// UID is the 64-byte RFC 9497 OPRF output of
	// oprf.ScopedInput(scope, data) under the scope's key.
	UID []byte
	// Used are the nodes whose partials were combined (t of them).
	Used []uint16
	// Rejected names the nodes whose partial was malformed, claimed
	// another node's id, or failed its DLEQ proof: faulty or malicious.
	Rejected []uint16
}

// ErrUIDTooFewPartials is wrapped by UIDEvaluate's error when fewer than
// t valid partial evaluations came back.
var ErrUIDTooFewPartials = errors.New("client: fewer valid partial evaluations than the threshold")

// UIDError is UIDEvaluate's error when fewer than t valid partials came
// back: it names the nodes whose partial was rejected (possibly none: the
// others did not answer). It wraps ErrUIDTooFewPartials.
type UIDError struct {
	Rejected         []uint16
	Valid, Threshold int
}

func (e *UIDError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "client: %d valid partial evaluations of the %d needed", e.Valid, e.Threshold)
	if len(e.Rejected) > 0 {
		fmt.Fprintf(&b, "; rejected the partials of nodes %v", e.Rejected)
	}
	return b.String()
}

func (e *UIDError) Unwrap() error { return ErrUIDTooFewPartials }

// UIDEvaluate computes the UID of data in key's scope, for account
// (keymesh_uidEvaluate): it blinds oprf.ScopedInput(scope, data) (RFC 9497
// Blind), has ap approve evaluating exactly that blinded element, sends it
// to the node, verifies every partial's DLEQ proof against key (never
// trusting the node's answer), and finalizes with t valid partials. The
// nodes never see data. A partial that fails is named in
// UIDResult.Rejected, and the others are used if t valid remain;
// otherwise the error is a *UIDError.
func (c *Client) UIDEvaluate(ctx context.Context, ap Approver, key *UIDKey, account string, data []byte) (*UIDResult, error) {
	if key == nil {
		return nil, errors.New("client: uid: no key")
	}
	st, req, err := oprf.BlindScoped(key.scope, data)
	if err != nil {
		return nil, fmt.Errorf("client: uid: %w", err)
	}
	blinded, _ := req.MarshalBinary()
	op := Operation{Scope: key.scope, Account: account, Method: api.MethodUIDEvaluate,
		Hash: api.UIDOperationHash(api.MethodUIDEvaluate, key.scope, blinded)}
	var res api.UIDEvaluation
	params := api.UIDEvaluateParams{Scope: key.scope, Account: account, Blinded: base64.RawURLEncoding.EncodeToString(blinded)}
	if err := call(ctx, c, ap, op, params, &res); err != nil {
		return nil, err
	}
	valid, rejected := checkPartials(key.pub, req, res.Partials)
	if len(valid) < key.pub.Threshold() {
		return nil, &UIDError{Rejected: rejected, Valid: len(valid), Threshold: key.pub.Threshold()}
	}
	slices.SortFunc(valid, func(a, b *oprf.Partial) int { return int(a.ID()) - int(b.ID()) })
	valid = valid[:key.pub.Threshold()]
	out, err := st.Finalize(key.pub, valid)
	if err != nil {
		return nil, fmt.Errorf("client: uid: %w", err)
	}
	used := make([]uint16, len(valid))
	for i, p := range valid {
		used[i] = p.ID()
	}
	return &UIDResult{UID: out, Used: used, Rejected: rejected}, nil
}

// checkPartials keeps each node's first partial that parses, is that
// node's, and whose proof verifies against pub for req; it names every
// node with a partial that fails (sorted).
func checkPartials(pub *oprf.PublicKey, req *oprf.Request, ps []api.UIDPartial) (valid []*oprf.Partial, rejected []uint16) {
	seen := map[uint16]bool{}
	for _, p := range ps {
		if p.Partial == "" || seen[p.Node] {
			continue
		}
		b, err := base64.RawURLEncoding.DecodeString(p.Partial)
		var pt *oprf.Partial
		if err == nil {
			pt, err = oprf.ParsePartial(b)
		}
		if err == nil && pt.ID() != p.Node {
			err = errors.New("another node's id")
		}
		if err == nil {
			err = pt.Verify(pub, req)
		}
		if err != nil {
			if !slices.Contains(rejected, p.Node) {
				rejected = append(rejected, p.Node)
			}
			continue
		}
		seen[p.Node] = true
		valid = append(valid, pt)
	}
	slices.Sort(rejected)
	return valid, rejected
}
