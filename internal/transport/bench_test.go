package transport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// BenchmarkCommitReveal3 runs one 3-party commit-reveal session (3 rounds,
// 12 messages) per iteration over real TCP + mTLS on loopback, the three
// nodes in this process.
func BenchmarkCommitReveal3(b *testing.B) {
	nodes := newClusterB(b, 3)
	ctx := context.Background()
	before := nodes[0].tr.Stats().BytesSent
	for b.Loop() {
		if err := runCommitReveal(ctx, nodes, all3, nil).agree(all3); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(nodes[0].tr.Stats().BytesSent-before)/float64(b.N), "node1-bytes-sent/op")
}

// BenchmarkCall measures one peer RPC round trip with a 1 KiB body.
func BenchmarkCall(b *testing.B) {
	nodes := newClusterB(b, 2)
	nodes[1].tr.Handle("echo", func(ctx context.Context, from uint16, body []byte) ([]byte, error) { return body, nil })
	body := bytes.Repeat([]byte{1}, 1024)
	ctx := context.Background()
	for b.Loop() {
		if _, err := nodes[0].tr.Call(ctx, 2, "echo", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFrameMsg encodes and decodes a frame holding a 16 KiB round
// message with a 3-party echo.
func BenchmarkFrameMsg(b *testing.B) {
	m := testMessage()
	m.Payload = make([]byte, 16<<10)
	m.Echo = make([]byte, 3*32)
	b.SetBytes(int64(len(m.Payload)))
	for b.Loop() {
		enc, err := appendFrame(nil, &frame{typ: frameMsg, msg: m})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := readFrame(bytes.NewReader(enc)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFrameLarge decodes frames larger than frameChunk, whose
// buffer grows as their bytes arrive (about one extra copy of the frame in
// all), through a bufio.Reader as readLoop does.
func BenchmarkReadFrameLarge(b *testing.B) {
	for _, size := range []int{256 << 10, round.MaxPayload} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			m := testMessage()
			m.Payload = make([]byte, size)
			enc, err := appendFrame(nil, &frame{typ: frameMsg, msg: m})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			r := bytes.NewReader(enc)
			br := bufio.NewReaderSize(r, 64<<10)
			for b.Loop() {
				r.Reset(enc)
				br.Reset(r)
				if _, _, err := readFrame(br); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
