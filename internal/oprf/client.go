package oprf

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudflare/circl/group"
	circloprf "github.com/cloudflare/circl/oprf"
)

// ErrTooFewPartials is wrapped by Finalize's error when fewer than t
// distinct, valid partial evaluations were given.
var ErrTooFewPartials = errors.New("oprf: fewer partial evaluations than the threshold")

// ErrFinalized is returned by Finalize on a BlindState that already produced
// its output.
var ErrFinalized = errors.New("oprf: blind state already finalized")

// NodeError names the nodes whose partial evaluation was rejected: a proof
// that does not verify against the node's verification share, a node that
// is not in the key, or two partials for one node. The caller should
// treat these nodes as faulty and may call Finalize again with partials from
// other nodes.
type NodeError struct {
	Nodes []uint16 // sorted
	Err   error
}

func (e *NodeError) Error() string {
	var b strings.Builder
	b.WriteString("oprf: rejected partial evaluation from node")
	if len(e.Nodes) > 1 {
		b.WriteString("s")
	}
	for i, n := range e.Nodes {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %d", n)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *NodeError) Unwrap() error { return e.Err }

// Blames reports whether node is among the nodes named.
func (e *NodeError) Blames(node uint16) bool { return slices.Contains(e.Nodes, node) }

// ErrBadProof is wrapped by a NodeError for partials whose DLEQ proof does
// not verify.
var ErrBadProof = errors.New("oprf: DLEQ proof does not verify")

// BlindState is the client's secret state between Blind and Finalize: the
// input and the blind r. It never prints, and Finalize succeeds at most once,
// after which the blind is wiped.
type BlindState struct {
	_     [0]func()
	input []byte
	blind group.Scalar
	req   *Request
	fd    *circloprf.FinalizeData
	done  bool
}

// Format redacts the state for every verb.
func (s BlindState) Format(f fmt.State, _ rune) { fmt.Fprint(f, "oprf.BlindState{redacted}") }

// Blind is RFC 9497 §3.3.1 Blind (base mode): it picks a random blind r and
// returns the state to keep and the request B = r·HashToGroup(input) to send
// to the nodes. input is at most MaxInputLen bytes; use ScopedInput to make
// it for a scope.
func Blind(input []byte) (*BlindState, *Request, error) {
	return blind(input, g.RandomNonZeroScalar(rand.Reader))
}

// BlindScoped is Blind(ScopedInput(scope, data)).
func BlindScoped(scope string, data []byte) (*BlindState, *Request, error) {
	in, err := ScopedInput(scope, data)
	if err != nil {
		return nil, nil, err
	}
	return Blind(in)
}

func blind(input []byte, r group.Scalar) (*BlindState, *Request, error) {
	if len(input) > MaxInputLen {
		return nil, nil, fmt.Errorf("oprf: input of %d bytes exceeds %d", len(input), MaxInputLen)
	}
	in := slices.Clone(input)
	fd, er, err := circloprf.NewClient(suite).DeterministicBlind([][]byte{in}, []group.Scalar{r})
	if err != nil {
		return nil, nil, fmt.Errorf("oprf: blind: %w", err)
	}
	req := &Request{b: er.Elements[0]}
	return &BlindState{input: in, blind: r, req: req, fd: fd}, req, nil
}

// Finalize verifies every partial's proof against its node's verification
// share in pub, combines t of them with Lagrange coefficients in the
// exponent (Z = Σ λ_i·Z_i = k·B) and runs RFC 9497 §3.3.1 Finalize on Z: the
// result is the 64-byte RFC 9497 OPRF output of the input under the shared
// key.
//
// Errors: a *NodeError naming every node whose partial was rejected (wrapping
// ErrBadProof for failed proofs), then an error wrapping ErrTooFewPartials if
// fewer than t partials remain. Neither consumes the state, so the caller may
// ask other nodes and call Finalize again. After a success the blind is
// wiped and further calls return ErrFinalized.
func (s *BlindState) Finalize(pub *PublicKey, partials []*Partial) ([]byte, error) {
	if s.done {
		return nil, ErrFinalized
	}
	if pub == nil {
		return nil, errors.New("oprf: nil public key")
	}
	var (
		bad, dup, unknown []uint16
		ids               []uint16
		byID              = make(map[uint16]*Partial, len(partials))
	)
	for _, p := range partials {
		if p == nil {
			return nil, errors.New("oprf: nil partial")
		}
		if _, seen := byID[p.id]; seen {
			dup = append(dup, p.id)
			continue
		}
		byID[p.id] = p
		y := pub.share(p.id)
		if y == nil {
			unknown = append(unknown, p.id)
			continue
		}
		if !p.verify(y, s.req.b) {
			bad = append(bad, p.id)
			continue
		}
		ids = append(ids, p.id)
	}
	if len(bad)+len(dup)+len(unknown) > 0 {
		var errs []error
		if len(bad) > 0 {
			errs = append(errs, ErrBadProof)
		}
		if len(dup) > 0 {
			errs = append(errs, fmt.Errorf("more than one partial for node(s) %v", dup))
		}
		if len(unknown) > 0 {
			errs = append(errs, fmt.Errorf("node(s) %v not in the key", unknown))
		}
		nodes := slices.Concat(bad, dup, unknown)
		slices.Sort(nodes)
		return nil, &NodeError{Nodes: slices.Compact(nodes), Err: errors.Join(errs...)}
	}
	if len(ids) < pub.t {
		return nil, fmt.Errorf("%w: %d of %d", ErrTooFewPartials, len(ids), pub.t)
	}
	slices.Sort(ids)
	ids = ids[:pub.t]
	z := g.Identity()
	tmp := g.NewElement()
	for i, id := range ids {
		z.Add(z, tmp.Mul(byID[id].z, lagrange(ids, i, 0)))
	}
	out, err := circloprf.NewClient(suite).Finalize(s.fd, &circloprf.Evaluation{Elements: []group.Element{z}})
	if err != nil {
		return nil, fmt.Errorf("oprf: finalize: %w", err)
	}
	s.done = true
	s.blind.SetUint64(0)
	return out[0], nil
}
