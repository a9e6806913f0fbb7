package replica

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestBatchRoundTrip(t *testing.T) {
	es := []Entry{{Pos: 3, Data: []byte("a")}, {Pos: 7, Data: bytes.Repeat([]byte("b"), 1000)}, {Pos: 8, Data: []byte("c")}}
	b := encodeBatch(es)
	got, err := decodeBatch(b, 2, MaxBatch)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(es) {
		t.Fatalf("%d entries", len(got))
	}
	for i := range es {
		if got[i].Pos != es[i].Pos || !bytes.Equal(got[i].Data, es[i].Data) {
			t.Fatalf("entry %d: %+v", i, got[i])
		}
	}
	for _, c := range []struct {
		name  string
		b     []byte
		after int64
		limit int
	}{
		{"not after cursor", b, 3, MaxBatch},
		{"more than asked", b, 2, 2},
		{"trailing", append(bytes.Clone(b), 0), 2, MaxBatch},
		{"truncated", b[:len(b)-1], 2, MaxBatch},
		{"version", append([]byte{2}, b[1:]...), 2, MaxBatch},
		{"descending", encodeBatch([]Entry{{Pos: 5, Data: []byte("x")}, {Pos: 4, Data: []byte("y")}}), 0, MaxBatch},
		{"repeated", encodeBatch([]Entry{{Pos: 5, Data: []byte("x")}, {Pos: 5, Data: []byte("y")}}), 0, MaxBatch},
		{"empty record", encodeBatch([]Entry{{Pos: 5, Data: nil}}), 0, MaxBatch},
		{"negative position", encodeBatch([]Entry{{Pos: -1, Data: []byte("x")}}), 0, MaxBatch},
		{"huge record", func() []byte {
			b := []byte{wireVersion, 0, 1}
			b = binary.BigEndian.AppendUint64(b, 1)
			return binary.BigEndian.AppendUint32(b, MaxRecord+1)
		}(), 0, MaxBatch},
	} {
		if _, err := decodeBatch(c.b, c.after, c.limit); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func TestBatchBounded(t *testing.T) {
	big := bytes.Repeat([]byte{1}, MaxRecord)
	var es []Entry
	for i := range 10 {
		es = append(es, Entry{Pos: int64(i + 1), Data: big})
	}
	b := encodeBatch(es)
	if len(b) > maxPullBytes {
		t.Fatalf("batch of %d bytes", len(b))
	}
	got, err := decodeBatch(b, 0, MaxBatch)
	if err != nil || len(got) == 0 || len(got) == len(es) {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	var many []Entry
	for i := range MaxBatch + 10 {
		many = append(many, Entry{Pos: int64(i + 1), Data: []byte{1}})
	}
	if got, err := decodeBatch(encodeBatch(many), 0, MaxBatch); err != nil || len(got) != MaxBatch {
		t.Fatalf("%d entries, %v", len(got), err)
	}
}

func FuzzDecodePush(f *testing.F) {
	f.Add(encodePush([]byte("record")))
	f.Add([]byte{})
	f.Add([]byte{wireVersion})
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodePush(b)
		if err != nil {
			return
		}
		if checkRecord(rec) != nil || !bytes.Equal(encodePush(rec), b) {
			t.Fatalf("accepted %x, re-encodes differently", b)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	f.Add(encodeAck(RecordID([]byte("x"))))
	f.Add([]byte{wireVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := decodeAck(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeAck(id), b) {
			t.Fatalf("accepted %x, re-encodes differently", b)
		}
	})
}

func FuzzDecodePull(f *testing.F) {
	f.Add(encodePull(0, 1))
	f.Add(encodePull(1<<62, MaxBatch))
	f.Add(encodePull(-1, 1))
	f.Add(encodePull(5, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		after, limit, err := decodePull(b)
		if err != nil {
			return
		}
		if after < 0 || limit < 1 || limit > MaxBatch || !bytes.Equal(encodePull(after, limit), b) {
			t.Fatalf("accepted %x as (%d, %d)", b, after, limit)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([]Entry{{Pos: 1, Data: []byte("a")}, {Pos: 9, Data: []byte("bc")}}), int64(0), uint16(MaxBatch))
	f.Add(encodeBatch(nil), int64(0), uint16(1))
	f.Add([]byte{wireVersion, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}, int64(0), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, after int64, limit uint16) {
		es, err := decodeBatch(b, after, int(limit))
		if err != nil {
			return
		}
		if len(es) > int(limit) || len(es) > MaxBatch {
			t.Fatalf("%d entries for limit %d", len(es), limit)
		}
		last := after
		for _, e := range es {
			if e.Pos <= last || checkRecord(e.Data) != nil {
				t.Fatalf("bad entry accepted: pos %d after %d, %d bytes", e.Pos, last, len(e.Data))
			}
			last = e.Pos
		}
		if len(b) <= maxPullBytes && !bytes.Equal(encodeBatch(es), b) {
			t.Fatalf("accepted %x, re-encodes differently", b)
		}
	})
}
