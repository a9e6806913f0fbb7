package codec

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

var errTest = errors.New("test: malformed")

func TestWriterKnownBytes(t *testing.T) {
	var w Writer
	w.Grow(64)
	w.U8(1)
	w.U16(0x0203)
	w.U32(0x04050607)
	w.U64(0x08090a0b0c0d0e0f)
	w.Fixed([]byte{0xff})
	w.Var([]byte("ab"))
	w.String("c")
	w.Var(nil)
	const want = "01" + "0203" + "04050607" + "08090a0b0c0d0e0f" + "ff" + "00000002" + "6162" + "00000001" + "63" + "00000000"
	if got := hex.EncodeToString(w.Bytes()); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	b, _ := hex.DecodeString(want)
	r := NewReader(b, errTest)
	if r.U8("a") != 1 || r.U16("b") != 0x0203 || r.U32("c") != 0x04050607 || r.U64("d") != 0x08090a0b0c0d0e0f ||
		!bytes.Equal(r.Bytes(1, "e"), []byte{0xff}) || string(r.Var(2, "f")) != "ab" || string(r.Var(1, "g")) != "c" ||
		r.Var(0, "h") == nil || r.Len() != 0 {
		t.Fatal("read back differs")
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestReaderRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		in   string
		read func(r *Reader)
		msg  string
	}{
		"trailing":        {"0100", func(r *Reader) { r.U8("x") }, "1 trailing bytes"},
		"truncated u16":   {"01", func(r *Reader) { r.U16("kem") }, "kem: truncated"},
		"truncated u32":   {"010203", func(r *Reader) { r.U32("n") }, "n: truncated"},
		"truncated u64":   {"01020304050607", func(r *Reader) { r.U64("t") }, "t: truncated"},
		"truncated bytes": {"0102", func(r *Reader) { r.Bytes(3, "id") }, "id: truncated"},
		"negative bytes":  {"", func(r *Reader) { r.Bytes(-1, "id") }, "id: truncated"},
		"var over max":    {"00000005" + "0102030405", func(r *Reader) { r.Var(4, "key") }, "key: 5 bytes, at most 4 allowed"},
		"var huge":        {"ffffffff", func(r *Reader) { r.Var(1<<20, "body") }, "body: 4294967295 bytes, at most 1048576 allowed"},
		"var truncated":   {"00000003" + "0102", func(r *Reader) { r.Var(8, "sig") }, "sig: truncated"},
		"var8 truncated":  {"03" + "0102", func(r *Reader) { r.Var8("method") }, "method: truncated"},
		"var16 truncated": {"0003" + "0102", func(r *Reader) { r.Var16("enc") }, "enc: truncated"},
		"bad magic":       {"4b4d5859", func(r *Reader) { r.Magic("KMXX", "a thing") }, "not a thing (bad magic)"},
		"short magic":     {"4b4d", func(r *Reader) { r.Magic("KMXX", "a thing") }, "a thing magic: truncated"},
		"first sticks":    {"01", func(r *Reader) { r.U16("first"); r.U8("second"); r.Fail("third") }, "first: truncated"},
	} {
		b, _ := hex.DecodeString(c.in)
		r := NewReader(b, errTest)
		c.read(&r)
		err := r.Done()
		if !errors.Is(err, errTest) {
			t.Errorf("%s: %v does not wrap the base error", name, err)
			continue
		}
		if !strings.HasSuffix(err.Error(), ": "+c.msg) {
			t.Errorf("%s: %q, want it to end in %q", name, err, c.msg)
		}
	}
}

// After an error every read returns a zero value and nothing is consumed.
func TestReaderZeroAfterError(t *testing.T) {
	r := NewReader([]byte{0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8}, errTest)
	if r.Var(8, "x") != nil {
		t.Fatal("over-long field returned")
	}
	if r.U8("a") != 0 || r.U16("b") != 0 || r.U32("c") != 0 || r.U64("d") != 0 || r.Bytes(1, "e") != nil ||
		r.Var8("f") != nil || r.Var16("g") != nil || r.Var(8, "h") != nil {
		t.Fatal("read after an error returned data")
	}
}

// A returned slice cannot be grown into the bytes after it.
func TestReaderCapsSlices(t *testing.T) {
	r := NewReader([]byte{2, 'a', 'b', 'c'}, errTest)
	v := r.Var8("v")
	if cap(v) != 2 {
		t.Fatalf("cap %d", cap(v))
	}
	if w := r.Bytes(1, "w"); cap(w) != 1 {
		t.Fatalf("cap %d", cap(w))
	}
}

// FuzzReader reads one field of each shape; whatever decodes must be the
// only encoding of what was read.
func FuzzReader(f *testing.F) {
	f.Add([]byte("\x01\x00\x00\x02ab\x01c\x00\x01d\x00\x00\x00\x00\x00\x00\x00\x07"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b, errTest)
		u8 := r.U8("u8")
		v := r.Var(64, "var")
		v8 := r.Var8("var8")
		v16 := r.Var16("var16")
		u64 := r.U64("u64")
		if err := r.Done(); err != nil {
			if !errors.Is(err, errTest) {
				t.Fatalf("%v does not wrap the base error", err)
			}
			return
		}
		var w Writer
		w.U8(u8)
		w.Var(v)
		w.U8(uint8(len(v8)))
		w.Fixed(v8)
		w.U16(uint16(len(v16)))
		w.Fixed(v16)
		w.U64(u64)
		if !bytes.Equal(w.Bytes(), b) {
			t.Fatalf("%x re-encodes as %x", b, w.Bytes())
		}
	})
}

// Reading allocates nothing: the Reader stays on the caller's stack (see
// the comment on U8), and no error label is built on success.
func TestReaderAllocatesNothing(t *testing.T) {
	var w Writer
	w.Fixed([]byte("KMXX"))
	w.U8(1)
	w.U16(2)
	w.U32(3)
	w.U64(4)
	w.Var([]byte("five"))
	b := append(w.Bytes(), 1, 'x', 0, 1, 'y')
	allocs := testing.AllocsPerRun(100, func() {
		r := NewReader(b, errTest)
		r.Magic("KMXX", "a test")
		r.U8("a")
		r.U16("b")
		r.U32("c")
		r.U64("d")
		r.Var(8, "e")
		r.Var8("f")
		r.Var16("g")
		if r.Done() != nil {
			panic("decode failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decode, want 0", allocs)
	}
}
