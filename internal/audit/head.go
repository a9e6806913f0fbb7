package audit

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keymesh/keymesh/internal/record"
	"github.com/keymesh/keymesh/internal/store"
)

// Head is a node's statement of its chain's end: entry Seq has hash Hash,
// at Time. Seq 0 (an empty chain) is never signed.
type Head struct {
	Cluster string
	Node    uint16
	Seq     uint64
	Hash    [32]byte
	Time    time.Time
}

// SignedHead is a Head with its node's identity signature.
type SignedHead struct {
	Head
	Sig []byte
}

const (
	headVersion = 1
	maxCluster  = 128
)

// message is what the node signs (package doc).
func (h *Head) message() []byte {
	var w record.Writer
	w.String(headDomain)
	w.String(h.Cluster)
	w.U32(uint32(h.Node))
	w.U64(h.Seq)
	w.Fixed(h.Hash[:])
	w.U64(uint64(h.Time.UnixNano()))
	return w.Bytes()
}

// SignHead signs h with the node's identity key id (an Ed25519 crypto.Signer,
// config.Identity).
func SignHead(h Head, id crypto.Signer) (*SignedHead, error) {
	h.Time = h.Time.UTC().Round(0)
	if h.Seq == 0 || len(h.Cluster) > maxCluster || h.Time.Before(time.Unix(0, 0)) || h.Time.After(time.Unix(0, 1<<62)) {
		return nil, errors.New("audit: head: seq 0, cluster id too long or time out of range")
	}
	if _, ok := id.Public().(ed25519.PublicKey); !ok {
		return nil, errors.New("audit: head: the identity is not an Ed25519 key")
	}
	sig, err := id.Sign(nil, h.message(), crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("audit: head: %w", err)
	}
	return &SignedHead{Head: h, Sig: sig}, nil
}

// Verify checks the signature against the node's identity public key pub.
func (s *SignedHead) Verify(pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, s.message(), s.Sig) {
		return fmt.Errorf("audit: head seq %d of node %d: signature does not verify with the node's identity key", s.Seq, s.Node)
	}
	return nil
}

// Marshal returns the head's wire and storage encoding:
//
//	u8 version=1 ‖ cluster ‖ u32 node ‖ u64 seq ‖ hash(32) ‖ u64 time ‖ sig(64)
func (s *SignedHead) Marshal() []byte {
	var w record.Writer
	w.U8(headVersion)
	w.String(s.Cluster)
	w.U32(uint32(s.Node))
	w.U64(s.Seq)
	w.Fixed(s.Hash[:])
	w.U64(uint64(s.Time.UnixNano()))
	w.Fixed(s.Sig)
	return w.Bytes()
}

// DecodeSignedHead decodes Marshal's output strictly (errors wrap
// ErrMalformed). It does not verify the signature.
func DecodeSignedHead(b []byte) (*SignedHead, error) {
	r := record.NewReader(b)
	if v := r.U8("version"); r.Err() == nil && v != headVersion {
		return nil, fmt.Errorf("%w: head version %d", ErrMalformed, v)
	}
	s := &SignedHead{}
	s.Cluster = r.String(maxCluster, "cluster")
	node := r.U32("node")
	s.Seq = r.U64("seq")
	r.Fixed(s.Hash[:], "hash")
	ns := r.U64("time")
	s.Sig = make([]byte, ed25519.SignatureSize)
	r.Fixed(s.Sig, "sig")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: head: %v", ErrMalformed, err)
	}
	if node > 0xFFFF || s.Seq == 0 || ns > 1<<62 {
		return nil, fmt.Errorf("%w: head: node, seq or time out of range", ErrMalformed)
	}
	s.Node, s.Time = uint16(node), time.Unix(0, int64(ns)).UTC()
	return s, nil
}

// SignHead signs the chain's current end with id as node self of cluster,
// stores it as the node's latest signed head and returns it; it returns
// nil, nil for an empty chain.
func (l *Log) SignHead(ctx context.Context, cluster string, self uint16, id crypto.Signer) (*SignedHead, error) {
	seq, h, err := l.Head(ctx)
	if err != nil || seq == 0 {
		return nil, err
	}
	sh, err := SignHead(Head{Cluster: cluster, Node: self, Seq: seq, Hash: h, Time: l.now()}, id)
	if err != nil {
		return nil, err
	}
	if err := l.st.Put(ctx, nsMeta, metaSigned, sh.Marshal()); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return sh, nil
}

// HeadStore keeps the heads a node's peers signed and sent it, in its own
// store (package doc, "Store layout"), bounded per peer.
type HeadStore struct{ st store.Store }

// NewHeadStore returns the head store kept in st (migrated).
func NewHeadStore(st store.Store) *HeadStore { return &HeadStore{st: st} }

// Retention: the latest keepLatest heads of a node, and the oldest head in
// each band [2^k, 2^(k+1)) of distance in seq below the latest.
const keepLatest = 8

func headKey(node uint16, seq uint64) string { return fmt.Sprintf("%05d/%016x", node, seq) }

// ErrHeadConflict is wrapped by Keep's error when a head contradicts one
// the store holds from the same node: another hash at a seq it holds, or a
// lower seq than its latest, signed after it. Such a head is evidence of a
// rewritten or truncated chain; Keep does not store it (the heads it holds
// already prove the node's earlier statement) and the caller logs it. A
// lower seq signed before the latest held head is a late message, not a
// contradiction: Keep ignores it.
var ErrHeadConflict = errors.New("audit: the head contradicts one this node holds")

// Keep stores sh, a head whose signature the caller verified against its
// node's pinned identity key, and prunes that node's older heads.
func (hs *HeadStore) Keep(ctx context.Context, sh *SignedHead) error {
	return hs.st.Update(ctx, func(tx store.Ops) error {
		held, err := heads(ctx, tx, sh.Node)
		if err != nil {
			return err
		}
		for _, h := range held {
			if h.Seq == sh.Seq && h.Hash != sh.Hash {
				return fmt.Errorf("%w: node %d signed seq %d with hash %x… before and %x… now", ErrHeadConflict, sh.Node, sh.Seq, h.Hash[:8], sh.Hash[:8])
			}
			if h.Seq == sh.Seq {
				return nil // already held
			}
		}
		if n := len(held); n > 0 && held[n-1].Seq > sh.Seq {
			if !sh.Time.After(held[n-1].Time) {
				return nil // signed before the latest held: a late message
			}
			return fmt.Errorf("%w: node %d signed seq %d and later seq %d", ErrHeadConflict, sh.Node, held[n-1].Seq, sh.Seq)
		}
		if err := tx.Put(ctx, nsPeerHeads, headKey(sh.Node, sh.Seq), sh.Marshal()); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		for _, h := range prune(append(held, sh)) {
			if err := tx.Delete(ctx, nsPeerHeads, headKey(h.Node, h.Seq)); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
		}
		return nil
	})
}

// prune returns the heads (ascending by seq) that retention drops: of
// those older than the keepLatest latest, all but the oldest in each band
// of distance below the latest. As the latest moves on, a kept head
// moves to a higher band, where the older one stays; so the history left
// is spaced exponentially back to the first head ever received.
func prune(hs []*SignedHead) []*SignedHead {
	if len(hs) <= keepLatest {
		return nil
	}
	latest := hs[len(hs)-1].Seq
	var drop []*SignedHead
	band := map[int]bool{}
	for _, h := range hs[:len(hs)-keepLatest] { // oldest first
		b := bits.Len64(latest - h.Seq)
		if band[b] {
			drop = append(drop, h)
			continue
		}
		band[b] = true
	}
	return drop
}

// Heads returns the heads held from node, ascending by seq.
func (hs *HeadStore) Heads(ctx context.Context, node uint16) ([]*SignedHead, error) {
	return heads(ctx, hs.st, node)
}

// Nodes returns the ids of the nodes whose heads the store holds.
func (hs *HeadStore) Nodes(ctx context.Context) ([]uint16, error) {
	es, err := hs.st.List(ctx, nsPeerHeads, "", 0)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var ids []uint16
	for _, e := range es {
		n, _, _ := strings.Cut(e.Key, "/")
		if v, err := strconv.ParseUint(n, 10, 16); err == nil && !slices.Contains(ids, uint16(v)) {
			ids = append(ids, uint16(v))
		}
	}
	return ids, nil
}

func heads(ctx context.Context, ops store.Ops, node uint16) ([]*SignedHead, error) {
	es, err := ops.List(ctx, nsPeerHeads, fmt.Sprintf("%05d/", node), 0)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	out := make([]*SignedHead, 0, len(es))
	for _, e := range es {
		sh, err := DecodeSignedHead(e.Value)
		if err != nil {
			return nil, fmt.Errorf("audit: held head %s: %w", e.Key, err)
		}
		out = append(out, sh)
	}
	return out, nil
}
