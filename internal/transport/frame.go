package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/keymesh/keymesh/internal/mpc/round"
)

// Wire format. Every frame is
//
//	length(4) ‖ version(1)=1 ‖ type(1) ‖ fields
//
// where length counts every byte after itself, integers are big-endian, and
// the fields of each type are:
//
//	msg      (1): a round.Message in its binary encoding (round.Message.MarshalBinary)
//	request  (2): call id(8) ‖ len(kind)(1) ‖ kind ‖ body
//	response (3): call id(8) ‖ status(1) ‖ body   status 0: body is the result;
//	                                              status 1: body is a UTF-8 error text
//	ping     (4): nonce(8)
//	pong     (5): nonce(8), echoing the ping
//
// Decoding is strict: an unknown version or type, a kind outside
// [1, maxKindLen] printable ASCII, a status other than 0 or 1, an error text
// that is not UTF-8 or longer than maxErrorText, oversized bodies and
// trailing bytes are all errors, so every frame has exactly one encoding.
const (
	frameVersion = 1

	frameMsg      = 1
	frameRequest  = 2
	frameResponse = 3
	framePing     = 4
	framePong     = 5

	// MaxBody bounds a peer RPC request or response body.
	MaxBody = round.MaxPayload
	// maxFrame bounds the length field: a round.Message at its largest
	// plus our own header.
	maxFrame = 2 + 39 + 4 + round.MaxEcho + 4 + round.MaxPayload

	maxKindLen   = 64
	maxErrorText = 1024
)

type frame struct {
	typ  byte
	id   uint64         // call id (request, response) or nonce (ping, pong)
	kind string         // request
	ok   bool           // response
	body []byte         // request, response
	msg  *round.Message // msg
}

// appendFrame appends f's encoding, length prefix included, to b.
func appendFrame(b []byte, f *frame) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, frameVersion, f.typ)
	switch f.typ {
	case frameMsg:
		mb, err := f.msg.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
		b = append(b, mb...)
	case frameRequest:
		if err := checkKind(f.kind); err != nil {
			return nil, err
		}
		if len(f.body) > MaxBody {
			return nil, fmt.Errorf("transport: request body of %d bytes exceeds %d", len(f.body), MaxBody)
		}
		b = binary.BigEndian.AppendUint64(b, f.id)
		b = append(b, byte(len(f.kind)))
		b = append(b, f.kind...)
		b = append(b, f.body...)
	case frameResponse:
		b = binary.BigEndian.AppendUint64(b, f.id)
		if f.ok {
			if len(f.body) > MaxBody {
				return nil, fmt.Errorf("transport: response body of %d bytes exceeds %d", len(f.body), MaxBody)
			}
			b = append(b, 0)
		} else {
			if len(f.body) > maxErrorText || !utf8.Valid(f.body) {
				return nil, errors.New("transport: error text is too long or not UTF-8")
			}
			b = append(b, 1)
		}
		b = append(b, f.body...)
	case framePing, framePong:
		b = binary.BigEndian.AppendUint64(b, f.id)
	default:
		return nil, fmt.Errorf("transport: unknown frame type %d", f.typ)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b, nil
}

// frameChunk is the read buffer a frame starts with. A frame's buffer then
// at most doubles, and only once it is full: it is never larger than
// max(frameChunk, 2×the bytes that arrived) nor than the announced length.
// So a peer that announces a maxFrame-byte frame and sends one byte costs
// frameChunk, not maxFrame; memory follows the bytes a peer really sent.
// Frames up to frameChunk (all of an honest run's but the largest) are
// read with one allocation, as before.
const frameChunk = 64 << 10

// readFrame reads one frame from r. The length field is bounded by
// maxFrame, and the buffer grows as the frame's bytes arrive (frameChunk),
// never from the length field alone.
func readFrame(r io.Reader) (*frame, int, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, 0, err
	}
	n := int(binary.BigEndian.Uint32(l[:]))
	if n > maxFrame {
		return nil, 4, fmt.Errorf("transport: frame of %d bytes exceeds %d", n, maxFrame)
	}
	b := make([]byte, 0, min(n, frameChunk))
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n-len(b), len(b)))
		}
		k, err := io.ReadFull(r, b[len(b):min(cap(b), n)])
		b = b[:len(b)+k]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, 4, err
		}
	}
	f, err := parseFrame(b)
	return f, 4 + n, err
}

// parseFrame decodes the bytes after the length prefix.
func parseFrame(b []byte) (*frame, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("transport: frame of %d bytes is shorter than its header", len(b))
	}
	if b[0] != frameVersion {
		return nil, fmt.Errorf("transport: unknown frame version %d", b[0])
	}
	f := &frame{typ: b[1]}
	rest := b[2:]
	switch f.typ {
	case frameMsg:
		var m round.Message
		if err := m.UnmarshalBinary(rest); err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
		f.msg = &m
		return f, nil
	case frameRequest:
		if len(rest) < 9 {
			return nil, errors.New("transport: truncated request")
		}
		f.id = binary.BigEndian.Uint64(rest)
		kl := int(rest[8])
		rest = rest[9:]
		if kl > len(rest) {
			return nil, errors.New("transport: truncated request kind")
		}
		f.kind = string(rest[:kl])
		if err := checkKind(f.kind); err != nil {
			return nil, err
		}
		f.body = rest[kl:]
		if len(f.body) > MaxBody {
			return nil, fmt.Errorf("transport: request body of %d bytes exceeds %d", len(f.body), MaxBody)
		}
		return f, nil
	case frameResponse:
		if len(rest) < 9 {
			return nil, errors.New("transport: truncated response")
		}
		f.id = binary.BigEndian.Uint64(rest)
		f.body = rest[9:]
		switch rest[8] {
		case 0:
			f.ok = true
			if len(f.body) > MaxBody {
				return nil, fmt.Errorf("transport: response body of %d bytes exceeds %d", len(f.body), MaxBody)
			}
		case 1:
			if len(f.body) > maxErrorText || !utf8.Valid(f.body) {
				return nil, errors.New("transport: error text is too long or not UTF-8")
			}
		default:
			return nil, fmt.Errorf("transport: unknown response status %d", rest[8])
		}
		return f, nil
	case framePing, framePong:
		if len(rest) != 8 {
			return nil, fmt.Errorf("transport: ping or pong of %d bytes, want 8", len(rest))
		}
		f.id = binary.BigEndian.Uint64(rest)
		return f, nil
	default:
		return nil, fmt.Errorf("transport: unknown frame type %d", f.typ)
	}
}

// checkKind accepts 1..maxKindLen bytes of printable ASCII without spaces.
func checkKind(kind string) error {
	if len(kind) == 0 || len(kind) > maxKindLen {
		return fmt.Errorf("transport: call kind of %d bytes, want 1..%d", len(kind), maxKindLen)
	}
	for i := 0; i < len(kind); i++ {
		if kind[i] <= ' ' || kind[i] > '~' {
			return fmt.Errorf("transport: call kind %q has a byte outside printable ASCII", kind)
		}
	}
	return nil
}

// errorText turns a handler error into the text sent to the caller: valid
// UTF-8, at most maxErrorText bytes.
func errorText(err error) []byte {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "")
	}
	return []byte(s)
}
