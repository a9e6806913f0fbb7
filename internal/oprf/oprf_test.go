package oprf

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cloudflare/circl/group"
	circloprf "github.com/cloudflare/circl/oprf"
	"github.com/cloudflare/circl/zk/dleq"
)

type vectorFile []struct {
	Identifier string `json:"identifier"`
	Mode       int    `json:"mode"`
	SkSm       string `json:"skSm"`
	PkSm       string `json:"pkSm"`
	Vectors    []struct {
		Batch             int    `json:"Batch"`
		Blind             string `json:"Blind"`
		BlindedElement    string `json:"BlindedElement"`
		EvaluationElement string `json:"EvaluationElement"`
		Input             string `json:"Input"`
		Output            string `json:"Output"`
		Proof             struct {
			Proof string `json:"proof"`
			R     string `json:"r"`
		} `json:"Proof"`
	} `json:"vectors"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc9497-ristretto255.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func scalarHex(t testing.TB, s string) group.Scalar {
	t.Helper()
	k, err := decodeScalar(unhex(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// deal Shamir-splits k t-of-len(ids) with a trusted dealer. Tests only: the
// product makes keys with package oprf/dkg.
func deal(t testing.TB, k group.Scalar, threshold int, ids []uint16) []*KeyShare {
	t.Helper()
	coeffs := []group.Scalar{k}
	for range threshold - 1 {
		coeffs = append(coeffs, g.RandomNonZeroScalar(rand.Reader))
	}
	ks := make([]group.Scalar, len(ids))
	ys := make([]group.Element, len(ids))
	for i, id := range ids {
		x := g.NewScalar().SetUint64(uint64(id))
		acc := g.NewScalar()
		for j := len(coeffs) - 1; j >= 0; j-- {
			acc.Mul(acc, x)
			acc.Add(acc, coeffs[j])
		}
		ks[i] = acc
		ys[i] = g.NewElement().MulGen(acc)
	}
	pub, err := NewPublicKey(threshold, g.NewElement().MulGen(k), ids, ys)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*KeyShare, len(ids))
	for i, id := range ids {
		if out[i], err = NewKeyShare(id, ks[i], pub); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func seqIDs(n int) []uint16 {
	ids := make([]uint16, n)
	for i := range ids {
		ids[i] = uint16(i + 1)
	}
	return ids
}

// subsets calls f with every subset of shares of size k.
func subsets(shares []*KeyShare, k int, f func([]*KeyShare)) {
	var rec func(start int, cur []*KeyShare)
	rec = func(start int, cur []*KeyShare) {
		if len(cur) == k {
			f(append([]*KeyShare(nil), cur...))
			return
		}
		for i := start; i < len(shares); i++ {
			rec(i+1, append(cur, shares[i]))
		}
	}
	rec(0, nil)
}

func evalAll(t testing.TB, shares []*KeyShare, req *Request) []*Partial {
	t.Helper()
	var ps []*Partial
	for _, s := range shares {
		p, err := Evaluate(s, req)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

// TestRFC9497OPRFVectors runs the RFC 9497 Appendix A.1.1 vectors through
// the threshold protocol: with the vector key as a 1-of-1 share, and split
// 2-of-3 and 3-of-5 by a dealer, every evaluation set must give the
// vector's Output.
func TestRFC9497OPRFVectors(t *testing.T) {
	var ran int
	for _, s := range loadVectors(t) {
		if s.Mode != 0 {
			continue
		}
		k := scalarHex(t, s.SkSm)
		for _, v := range s.Vectors {
			if v.Batch != 1 {
				continue
			}
			input, want := unhex(t, v.Input), unhex(t, v.Output)
			for _, tn := range [][2]int{{1, 1}, {2, 3}, {3, 5}} {
				shares := deal(t, k, tn[0], seqIDs(tn[1]))
				subsets(shares, tn[0], func(set []*KeyShare) {
					st, req, err := blind(input, scalarHex(t, v.Blind))
					if err != nil {
						t.Fatal(err)
					}
					if b, _ := req.MarshalBinary(); !bytes.Equal(b[1:], unhex(t, v.BlindedElement)) {
						t.Fatalf("blinded element %x, want %s", b[1:], v.BlindedElement)
					}
					ps := evalAll(t, set, req)
					if tn[0] == 1 && !bytes.Equal(mustEncode(ps[0].z), unhex(t, v.EvaluationElement)) {
						t.Fatalf("evaluation element %x, want %s", mustEncode(ps[0].z), v.EvaluationElement)
					}
					got, err := st.Finalize(set[0].Public(), ps)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%d-of-%d: output %x, want %x", tn[0], tn[1], got, want)
					}
					ran++
				})
			}
		}
	}
	if ran != 2*(1+3+10) {
		t.Fatalf("ran %d evaluations, want %d", ran, 2*(1+3+10))
	}
}

// TestRFC9497ProofVectors checks that a node's proof is the RFC 9497 §2.2
// proof: with the VOPRF vector key (Appendix A.1.2) as its share and the
// vector's proof randomness, Evaluate reproduces EvaluationElement and
// Proof byte for byte.
func TestRFC9497ProofVectors(t *testing.T) {
	var ran int
	for _, s := range loadVectors(t) {
		if s.Mode != 1 {
			continue
		}
		share := deal(t, scalarHex(t, s.SkSm), 1, []uint16{1})[0]
		if !bytes.Equal(share.Public().Bytes(), unhex(t, s.PkSm)) {
			t.Fatalf("public key %x, want %s", share.Public().Bytes(), s.PkSm)
		}
		for _, v := range s.Vectors {
			if v.Batch != 1 {
				continue
			}
			req, err := ParseRequest(append([]byte{1}, unhex(t, v.BlindedElement)...))
			if err != nil {
				t.Fatal(err)
			}
			p, err := evaluate(share, req, scalarHex(t, v.Proof.R))
			if err != nil {
				t.Fatal(err)
			}
			enc, _ := p.MarshalBinary()
			if got := hex.EncodeToString(enc[3 : 3+elementLen]); got != v.EvaluationElement {
				t.Fatalf("evaluation element %s, want %s", got, v.EvaluationElement)
			}
			if got := hex.EncodeToString(enc[3+elementLen:]); got != v.Proof.Proof {
				t.Fatalf("proof %s, want %s", got, v.Proof.Proof)
			}
			if !p.verify(share.pub.share(1), req.b) {
				t.Fatal("vector proof does not verify")
			}
			ran++
		}
	}
	if ran != 2 {
		t.Fatalf("ran %d proof vectors, want 2", ran)
	}
}

func circlKey(t testing.TB, k group.Scalar) *circloprf.PrivateKey {
	t.Helper()
	var sk circloprf.PrivateKey
	if err := sk.UnmarshalBinary(suite, mustEncodeScalar(k)); err != nil {
		t.Fatal(err)
	}
	return &sk
}

// TestMatchesCirclSingleServer: for random keys and inputs, every t-subset
// gives circl's single-server output for the dealt key.
func TestMatchesCirclSingleServer(t *testing.T) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		k := g.RandomNonZeroScalar(rand.Reader)
		want, _ := circloprf.NewServer(suite, circlKey(t, k)).FullEvaluate([]byte("alice@example.com"))
		shares := deal(t, k, tn[0], seqIDs(tn[1]))
		subsets(shares, tn[0], func(set []*KeyShare) {
			st, req, err := Blind([]byte("alice@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Finalize(set[0].Public(), evalAll(t, set, req))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%d-of-%d: output %x, circl %x", tn[0], tn[1], got, want)
			}
		})
		// More than t partials: still the same output.
		st, req, _ := Blind([]byte("alice@example.com"))
		got, err := st.Finalize(shares[0].Public(), evalAll(t, shares, req))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("all %d partials: %x, %v", tn[1], got, err)
		}
	}
}

// TestStandardVOPRFVerifierAcceptsNodeProof: circl's own VOPRF client,
// given a node's verification share as the server public key, accepts the
// node's partial evaluation and proof.
func TestStandardVOPRFVerifierAcceptsNodeProof(t *testing.T) {
	shares := deal(t, g.RandomNonZeroScalar(rand.Reader), 2, seqIDs(3))
	s := shares[1]
	var pk circloprf.PublicKey
	if err := pk.UnmarshalBinary(suite, mustEncode(s.pub.share(s.id))); err != nil {
		t.Fatal(err)
	}
	vc := circloprf.NewVerifiableClient(suite, &pk)
	fd, er, err := vc.Blind([][]byte{[]byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Evaluate(s, &Request{b: er.Elements[0]})
	if err != nil {
		t.Fatal(err)
	}
	var pr dleq.Proof
	if err := pr.UnmarshalBinary(g, p.proof.marshal()); err != nil {
		t.Fatal(err)
	}
	out, err := vc.Finalize(fd, &circloprf.Evaluation{Elements: []group.Element{p.z}, Proof: &pr})
	if err != nil {
		t.Fatalf("circl VOPRF client rejects the node's proof: %v", err)
	}
	// And the other way: circl's VOPRF server's proof passes our verifier.
	ev, err := circloprf.NewVerifiableServer(suite, circlKey(t, s.k)).Evaluate(&circloprf.EvaluationRequest{Elements: er.Elements})
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := ev.Proof.MarshalBinary()
	cp, err := parseProof(pb)
	if err != nil {
		t.Fatal(err)
	}
	if !verifyProof(s.pub.share(s.id), er.Elements[0], ev.Elements[0], cp) {
		t.Fatal("our verifier rejects circl's VOPRF proof")
	}
	if verifyProof(s.pub.share(s.id), er.Elements[0], g.NewElement().Dbl(ev.Elements[0]), cp) {
		t.Fatal("our verifier accepts circl's proof for another element")
	}
	want, _ := circloprf.NewVerifiableServer(suite, circlKey(t, s.k)).FullEvaluate([]byte("x"))
	if !bytes.Equal(out[0], want) {
		t.Fatal("VOPRF output under the node's share differs from circl's")
	}
}

func wantNodeError(t *testing.T, err error, nodes ...uint16) {
	t.Helper()
	var ne *NodeError
	if !errors.As(err, &ne) {
		t.Fatalf("error %v, want *NodeError naming %v", err, nodes)
	}
	if fmt.Sprint(ne.Nodes) != fmt.Sprint(nodes) {
		t.Fatalf("NodeError names %v, want %v", ne.Nodes, nodes)
	}
}

func TestWrongPartialIsNamed(t *testing.T) {
	shares := deal(t, g.RandomNonZeroScalar(rand.Reader), 3, seqIDs(5))
	pub := shares[0].Public()
	other := deal(t, g.RandomNonZeroScalar(rand.Reader), 3, seqIDs(5))
	st, req, err := Blind([]byte("bob"))
	if err != nil {
		t.Fatal(err)
	}
	good := evalAll(t, shares, req)
	want, err := st.Finalize(pub, good)
	if err != nil {
		t.Fatal(err)
	}

	st, req, _ = Blind([]byte("bob"))
	cases := map[string]func(ps []*Partial) ([]*Partial, []uint16){
		"wrong element": func(ps []*Partial) ([]*Partial, []uint16) {
			ps[1].z = g.NewElement().Add(ps[1].z, g.Generator())
			return ps, []uint16{2}
		},
		"proof of another partial": func(ps []*Partial) ([]*Partial, []uint16) {
			ps[2].proof = ps[0].proof
			return ps, []uint16{3}
		},
		"flipped proof bit": func(ps []*Partial) ([]*Partial, []uint16) {
			b, _ := ps[4].MarshalBinary()
			b[len(b)-20] ^= 1
			p, err := ParsePartial(b)
			if err != nil {
				t.Fatal(err)
			}
			ps[4] = p
			return ps, []uint16{5}
		},
		"share of another key": func(ps []*Partial) ([]*Partial, []uint16) {
			p, _ := Evaluate(other[0], req)
			ps[0] = p
			return ps, []uint16{1}
		},
		"two bad nodes": func(ps []*Partial) ([]*Partial, []uint16) {
			ps[0].z, ps[3].z = ps[3].z, ps[0].z
			return ps, []uint16{1, 4}
		},
		"duplicate node": func(ps []*Partial) ([]*Partial, []uint16) {
			return append(ps[:3], ps[0]), []uint16{1}
		},
		"unknown node": func(ps []*Partial) ([]*Partial, []uint16) {
			ps[0].id = 9
			return ps, []uint16{9}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			ps, culprits := mutate(evalAll(t, shares, req))
			if len(culprits) == 1 && name != "duplicate node" {
				for _, p := range ps {
					err := p.Verify(pub, req)
					if (p.ID() == culprits[0]) != (err != nil) {
						t.Fatalf("Verify of node %d: %v", p.ID(), err)
					}
				}
			}
			out, err := st.Finalize(pub, ps)
			if out != nil {
				t.Fatal("output despite a bad partial")
			}
			wantNodeError(t, err, culprits...)
		})
	}
	// The state survives rejected partials: retrying with good ones works.
	got, err := st.Finalize(pub, evalAll(t, shares[2:], req))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("retry after rejection: %x, %v", got, err)
	}
}

func TestTooFewPartials(t *testing.T) {
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		shares := deal(t, g.RandomNonZeroScalar(rand.Reader), tn[0], seqIDs(tn[1]))
		st, req, _ := Blind([]byte("carol"))
		for k := 0; k < tn[0]; k++ {
			subsets(shares, k, func(set []*KeyShare) {
				out, err := st.Finalize(shares[0].Public(), evalAll(t, set, req))
				if out != nil || !errors.Is(err, ErrTooFewPartials) {
					t.Fatalf("%d of %d-of-%d: %x, %v", k, tn[0], tn[1], out, err)
				}
			})
		}
	}
}

func TestFinalizeOnce(t *testing.T) {
	shares := deal(t, g.RandomNonZeroScalar(rand.Reader), 2, seqIDs(3))
	st, req, _ := Blind([]byte("dave"))
	ps := evalAll(t, shares, req)
	if _, err := st.Finalize(shares[0].Public(), ps); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Finalize(shares[0].Public(), ps); !errors.Is(err, ErrFinalized) {
		t.Fatalf("second Finalize: %v", err)
	}
	if !st.blind.IsZero() {
		t.Fatal("blind not wiped")
	}
}

func TestScopedInput(t *testing.T) {
	a, _ := ScopedInput("app-a", []byte("id"))
	b, _ := ScopedInput("app-b", []byte("id"))
	c, _ := ScopedInput("app-a", []byte("id"))
	d, _ := ScopedInput("app-", []byte("aid"))
	if bytes.Equal(a, b) || bytes.Equal(a, d) || !bytes.Equal(a, c) {
		t.Fatal("scoped inputs are not injective and deterministic")
	}
	want := "001b" + hex.EncodeToString([]byte(scopeLabel)) + "0005" + hex.EncodeToString([]byte("app-a")) + "0002" + "6964"
	if hex.EncodeToString(a) != want {
		t.Fatalf("encoding %x, want %s", a, want)
	}
	if _, err := ScopedInput("", []byte("id")); err == nil {
		t.Fatal("empty scope accepted")
	}
	if _, err := ScopedInput("s", make([]byte, MaxInputLen)); err == nil {
		t.Fatal("over-long input accepted")
	}
	if _, _, err := Blind(make([]byte, MaxInputLen+1)); err == nil {
		t.Fatal("Blind accepted an input over 65535 bytes")
	}

	shares := deal(t, g.RandomNonZeroScalar(rand.Reader), 2, seqIDs(3))
	uid := func(scope string) []byte {
		st, req, err := BlindScoped(scope, []byte("passport 123"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := st.Finalize(shares[0].Public(), evalAll(t, shares[:2], req))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if x, y := uid("vote"), uid("airdrop"); bytes.Equal(x, y) {
		t.Fatal("two scopes gave the same UID")
	}
	if x, y := uid("vote"), uid("vote"); !bytes.Equal(x, y) {
		t.Fatal("one scope gave two UIDs")
	}
}

func TestSecretsDoNotPrint(t *testing.T) {
	k := g.RandomNonZeroScalar(rand.Reader)
	share := deal(t, k, 1, []uint16{7})[0]
	st, _, _ := Blind([]byte("secret input"))
	secretHex := []string{hex.EncodeToString(mustEncodeScalar(k)), fmt.Sprint(k), hex.EncodeToString(mustEncodeScalar(st.blind))}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
		for _, v := range []any{share, *share, st, *st} {
			out := fmt.Sprintf(verb, v)
			for _, s := range secretHex {
				if strings.Contains(out, s) {
					t.Fatalf("%s of %T prints a secret: %s", verb, v, out)
				}
			}
			if strings.Contains(out, "secret input") {
				t.Fatalf("%s of %T prints the input", verb, v)
			}
		}
	}
}

func TestKeyShareEncoding(t *testing.T) {
	shares := deal(t, g.RandomNonZeroScalar(rand.Reader), 3, seqIDs(5))
	for _, s := range shares {
		b, _ := s.MarshalBinary()
		got, err := ParseKeyShare(b)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(s) {
			t.Fatal("round trip changed the share")
		}
		if _, err := ParseKeyShare(append(b, 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
	}
	if shares[0].Equal(shares[1]) {
		t.Fatal("different shares are Equal")
	}
	// A share that does not match its verification share is rejected.
	b, _ := shares[0].MarshalBinary()
	b2, _ := shares[1].MarshalBinary()
	copy(b[3:35], b2[3:35])
	if _, err := ParseKeyShare(b); err == nil {
		t.Fatal("share inconsistent with its verification share accepted")
	}
	// A public key whose shares are off the polynomial is rejected.
	pb, _ := shares[0].Public().MarshalBinary()
	ys := shares[0].Public().shares
	ys[4], ys[3] = ys[3], ys[4]
	bad, _ := shares[0].Public().MarshalBinary()
	ys[4], ys[3] = ys[3], ys[4]
	if _, err := ParsePublicKey(bad); err == nil {
		t.Fatal("inconsistent public key accepted")
	}
	if _, err := ParsePublicKey(pb); err != nil {
		t.Fatal(err)
	}
	// A node count above MaxNodes is refused before any group operation.
	big := append([]byte{1, 0, 1, 0xff, 0xff}, pb[5:]...)
	if _, err := ParsePublicKey(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("65535-node public key: %v", err)
	}
}

func TestNodeErrorAndZero(t *testing.T) {
	shares := deal(t, g.RandomNonZeroScalar(rand.Reader), 2, seqIDs(3))
	st, req, _ := Blind([]byte("erin"))
	ps := evalAll(t, shares, req)
	ps[0].z, ps[2].z = ps[2].z, ps[0].z
	_, err := st.Finalize(shares[0].Public(), ps)
	var ne *NodeError
	if !errors.As(err, &ne) || !ne.Blames(1) || !ne.Blames(3) || ne.Blames(2) || !errors.Is(err, ErrBadProof) {
		t.Fatalf("got %v", err)
	}
	if want := "oprf: rejected partial evaluation from nodes 1, 3: oprf: DLEQ proof does not verify"; err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	c, _ := ParseKeyShare(must(shares[0].MarshalBinary()))
	c.Zero()
	if !c.k.IsZero() || c.Equal(shares[0]) {
		t.Fatal("Zero did not wipe the share")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
