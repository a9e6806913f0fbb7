package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/keymesh/keymesh/internal/store"
)

// Problem is one thing Verify found wrong. Seq names the first entry it
// concerns (0 when it concerns no entry, e.g. a head whose signature does
// not verify).
type Problem struct {
	Seq uint64
	Msg string
}

func (p Problem) String() string {
	if p.Seq == 0 {
		return p.Msg
	}
	return fmt.Sprintf("entry %d: %s", p.Seq, p.Msg)
}

// Report is Verify's result.
type Report struct {
	Entries  uint64 // entries that chain correctly from the start
	Heads    int    // heads checked
	Matched  uint64 // the highest seq a peer's head confirms (0: none)
	Problems []Problem
	// Warnings are what limits the check without being wrong (no heads).
	Warnings []string
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// FirstBad returns the first entry named by a problem (0 if none).
func (r *Report) FirstBad() uint64 {
	var first uint64
	for _, p := range r.Problems {
		if p.Seq != 0 && (first == 0 || p.Seq < first) {
			first = p.Seq
		}
	}
	return first
}

// Verify checks the chain of node in ops (a node's store) from its first
// entry, and against heads, which its peers hold: each head must be signed
// by pub (the node's identity key as its peers pin it) and must name an
// entry of the chain with that very hash.
//
// The walk stops at the first entry that is missing, does not decode, sits
// under another seq's key (entries reordered) or does not commit to the
// previous entry's hash (it or the one before was changed); that entry is
// named. A chain that is whole but differs from a head (rewritten after the
// head was signed) is named by the head: the entries after the last head
// that matches, up to the first that does not, were rewritten. A head
// beyond the chain's end means entries were removed (truncated).
func Verify(ctx context.Context, ops store.Ops, node uint16, pub ed25519.PublicKey, heads []*SignedHead) (*Report, error) {
	rep := &Report{}
	var good []*SignedHead
	for _, h := range heads {
		if h.Node != node {
			rep.Problems = append(rep.Problems, Problem{Msg: fmt.Sprintf("a head of node %d was given for node %d", h.Node, node)})
			continue
		}
		if err := h.Verify(pub); err != nil {
			rep.Problems = append(rep.Problems, Problem{Msg: err.Error()})
			continue
		}
		good = append(good, h)
	}
	slices.SortFunc(good, func(a, b *SignedHead) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	rep.Heads = len(good)

	end, endHash, err := readHead(ctx, ops)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			return nil, err
		}
		rep.Problems = append(rep.Problems, Problem{Msg: "the chain's recorded end is malformed"})
	}
	last := end
	if n := len(good); n > 0 && good[n-1].Seq > last {
		last = good[n-1].Seq
	}

	// The chain walk: hashes at the seqs the heads name.
	want := map[uint64]bool{end: true}
	for _, h := range good {
		want[h.Seq] = true
	}
	hashes := map[uint64][32]byte{}
	var (
		next    = uint64(1)
		prev    [32]byte
		broken  bool
		errStop = errors.New("stop")
	)
	err = Walk(ctx, ops, last, func(seq uint64, key string, val []byte) error {
		bad := func(at uint64, format string, args ...any) error {
			rep.Problems = append(rep.Problems, Problem{Seq: at, Msg: fmt.Sprintf(format, args...)})
			broken = true
			return errStop
		}
		if seq == 0 {
			return bad(next, "a stored key %q is not an entry's seq", key)
		}
		if seq > next {
			return bad(next, "missing (deleted): the next stored entry is %d", seq)
		}
		e, err := DecodeEntry(val)
		if err != nil {
			return bad(seq, "does not decode: %v", err)
		}
		if e.Seq != seq {
			return bad(seq, "holds entry %d (entries moved or reordered)", e.Seq)
		}
		if e.Prev != prev {
			if seq == 1 {
				return bad(seq, "does not start the chain (its prev is not zero)")
			}
			return bad(seq-1, "changed: entry %d does not commit to its hash (entry %d or %d was modified)", seq, seq-1, seq)
		}
		prev = hashEncoding(val)
		if want[seq] {
			hashes[seq] = prev
		}
		next++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	rep.Entries = next - 1
	if !broken && end != rep.Entries {
		if end > rep.Entries {
			rep.Problems = append(rep.Problems, Problem{Seq: rep.Entries + 1, Msg: fmt.Sprintf("missing: the chain ends at %d but its recorded end is %d (truncated)", rep.Entries, end)})
		} else {
			rep.Problems = append(rep.Problems, Problem{Seq: end + 1, Msg: fmt.Sprintf("the chain goes on to %d past its recorded end %d", rep.Entries, end)})
		}
	} else if !broken && end > 0 && hashes[end] != endHash {
		rep.Problems = append(rep.Problems, Problem{Seq: end, Msg: "changed: its hash is not the chain's recorded end"})
	}

	// The heads: the last that matches and the first that does not.
	var lastMatch uint64
	for _, h := range good {
		got, ok := hashes[h.Seq]
		switch {
		case ok && got == h.Hash:
			lastMatch = h.Seq
			rep.Matched = h.Seq
			continue
		case ok:
			rep.Problems = append(rep.Problems, Problem{Seq: lastMatch + 1, Msg: fmt.Sprintf(
				"rewritten: entry %d's hash differs from the head node %d signed at %s (seq %d); entries %d to %d changed after it was signed",
				h.Seq, node, h.Time.Format("2006-01-02T15:04:05Z07:00"), h.Seq, lastMatch+1, h.Seq)})
		case !broken && h.Seq > rep.Entries:
			rep.Problems = append(rep.Problems, Problem{Seq: rep.Entries + 1, Msg: fmt.Sprintf(
				"missing: node %d signed a head at seq %d at %s but its chain ends at %d (truncated)",
				node, h.Seq, h.Time.Format("2006-01-02T15:04:05Z07:00"), rep.Entries)})
		default:
			continue // past a break already named: nothing more to say
		}
		break
	}
	if len(good) == 0 && rep.Entries > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("no head of node %d from its peers: the chain was checked on its own, and a rewrite of all of it would not show", node))
	}
	return rep, nil
}
