package enclave

import (
	"bytes"
	"fmt"

	"github.com/keymesh/keymesh/internal/codec"
)

const (
	sealedMagic      = "KMSEAL\x01"
	maxSealedPayload = 16 << 20
)

// Sealed is the outer format of a sealed blob, shared by all backends:
// which platform and measurement it was sealed to, and the backend's
// ciphertext. The header is public and authenticated by the backend (it is
// part of the AEAD's associated data), so a node can say which build sealed a
// secret before it tries to open it.
type Sealed struct {
	Platform    string
	Measurement Measurement
	Payload     []byte
}

// Header returns the encoding of the fields before Payload; backends use it as
// associated data.
func (s *Sealed) Header() []byte {
	b := make([]byte, 0, 64)
	b = append(b, sealedMagic...)
	b = append(b, byte(len(s.Platform)))
	b = append(b, s.Platform...)
	b = append(b, s.Measurement[:]...)
	return b
}

// MarshalBinary encodes s: header, then the payload with a 4-byte length.
func (s *Sealed) MarshalBinary() ([]byte, error) {
	return marshalTail("sealed", s.Platform, s.Header(), "payload", s.Payload, maxSealedPayload)
}

// UnmarshalBinary decodes a sealed blob strictly.
func (s *Sealed) UnmarshalBinary(data []byte) error {
	r := codec.NewReader(data, ErrMalformed)
	r.Magic(sealedMagic, "a sealed blob")
	var out Sealed
	out.Platform = readPlatform(&r)
	copy(out.Measurement[:], r.Bytes(len(out.Measurement), "measurement"))
	out.Payload = bytes.Clone(r.Var(maxSealedPayload, "payload"))
	if err := r.Done(); err != nil {
		return fmt.Errorf("enclave: sealed blob: %w", err)
	}
	*s = out
	return nil
}
