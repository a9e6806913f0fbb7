package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format, version 1. Every peer message starts with a version byte;
// integers are big-endian; decoding is strict (an unknown version, a field
// out of range and trailing bytes are errors), so each message has exactly
// one encoding.
//
//	push request  (kind "replica.push"): version(1) ‖ record            record: 1..MaxRecord bytes
//	push answer:                         version(1) ‖ SHA-256(record)(32)
//	pull request  (kind "replica.pull"): version(1) ‖ after(8) ‖ limit(2)   after ≥ 0, limit 1..MaxBatch
//	pull answer:                         version(1) ‖ count(2) ‖ count × (pos(8) ‖ len(4) ‖ record)
//
// In a pull answer count ≤ MaxBatch, positions are > after and strictly
// increasing, and every record is 1..MaxRecord bytes.
const (
	wireVersion = 1

	kindPush = "replica.push"
	kindPull = "replica.pull"

	// MaxRecord bounds one record. Records are small signed statements
	// (a passkey attestation is a few KiB); the bound keeps a catch-up
	// answer within the transport's body limit.
	MaxRecord = 256 << 10
	// MaxBatch bounds the records of one pull answer.
	MaxBatch = 256
	// maxPullBytes bounds the encoded records of one pull answer (well
	// under transport.MaxBody).
	maxPullBytes = 1 << 20
)

var errWire = errors.New("replica: malformed peer message")

func wireErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errWire, fmt.Sprintf(format, args...))
}

func checkRecord(rec []byte) error {
	if len(rec) == 0 {
		return errors.New("replica: empty record")
	}
	if len(rec) > MaxRecord {
		return fmt.Errorf("replica: record of %d bytes exceeds %d", len(rec), MaxRecord)
	}
	return nil
}

func encodePush(rec []byte) []byte {
	return append([]byte{wireVersion}, rec...)
}

func decodePush(b []byte) ([]byte, error) {
	if len(b) < 1 || b[0] != wireVersion {
		return nil, wireErr("push: unknown version")
	}
	rec := b[1:]
	if len(rec) == 0 || len(rec) > MaxRecord {
		return nil, wireErr("push: record of %d bytes, want 1..%d", len(rec), MaxRecord)
	}
	return rec, nil
}

func encodeAck(id ID) []byte {
	return append([]byte{wireVersion}, id[:]...)
}

func decodeAck(b []byte) (ID, error) {
	var id ID
	if len(b) != 1+len(id) || b[0] != wireVersion {
		return id, wireErr("push answer: want version 1 and 32 bytes, got %d bytes", len(b))
	}
	copy(id[:], b[1:])
	return id, nil
}

func encodePull(after int64, limit int) []byte {
	b := []byte{wireVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(after))
	return binary.BigEndian.AppendUint16(b, uint16(limit))
}

func decodePull(b []byte) (after int64, limit int, err error) {
	if len(b) != 11 || b[0] != wireVersion {
		return 0, 0, wireErr("pull: want version 1 and 11 bytes, got %d bytes", len(b))
	}
	u := binary.BigEndian.Uint64(b[1:9])
	if u > 1<<63-1 {
		return 0, 0, wireErr("pull: position out of range")
	}
	limit = int(binary.BigEndian.Uint16(b[9:11]))
	if limit < 1 || limit > MaxBatch {
		return 0, 0, wireErr("pull: limit %d, want 1..%d", limit, MaxBatch)
	}
	return int64(u), limit, nil
}

// Entry is one record of a node's replicated log.
type Entry struct {
	Pos  int64  // position in the log of the node that holds it; increasing, not contiguous
	Data []byte // the record
}

// encodeBatch encodes the longest prefix of es that fits maxPullBytes
// (always at least one entry when es is not empty, since a record is at
// most MaxRecord bytes).
func encodeBatch(es []Entry) []byte {
	b := []byte{wireVersion, 0, 0}
	n := 0
	for _, e := range es {
		if n == MaxBatch || (n > 0 && len(b)+12+len(e.Data) > maxPullBytes) {
			break
		}
		b = binary.BigEndian.AppendUint64(b, uint64(e.Pos))
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
		n++
	}
	binary.BigEndian.PutUint16(b[1:3], uint16(n))
	return b
}

// decodeBatch decodes a pull answer to a request for at most limit records
// after position after.
func decodeBatch(b []byte, after int64, limit int) ([]Entry, error) {
	if len(b) < 3 || b[0] != wireVersion {
		return nil, wireErr("pull answer: unknown version or short header")
	}
	n := int(binary.BigEndian.Uint16(b[1:3]))
	if n > limit || n > MaxBatch {
		return nil, wireErr("pull answer: %d records, asked for at most %d", n, limit)
	}
	b = b[3:]
	es := make([]Entry, 0, n)
	last := after
	for i := range n {
		if len(b) < 12 {
			return nil, wireErr("pull answer: record %d: short header", i)
		}
		u := binary.BigEndian.Uint64(b[:8])
		l := binary.BigEndian.Uint32(b[8:12])
		b = b[12:]
		if u > 1<<63-1 || int64(u) <= last {
			return nil, wireErr("pull answer: record %d: position %d not after %d", i, u, last)
		}
		if l == 0 || l > MaxRecord {
			return nil, wireErr("pull answer: record %d: length %d, want 1..%d", i, l, MaxRecord)
		}
		if uint64(len(b)) < uint64(l) {
			return nil, wireErr("pull answer: record %d: truncated", i)
		}
		last = int64(u)
		es = append(es, Entry{Pos: last, Data: append([]byte(nil), b[:l]...)})
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, wireErr("pull answer: %d trailing bytes", len(b))
	}
	return es, nil
}
