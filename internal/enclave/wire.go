package enclave

import (
	"fmt"

	"github.com/keymesh/keymesh/internal/codec"
)

// The formats of this package (quotes, sealed blobs, migration requests and
// bundles) are written with appends and codec.AppendVar and read with
// codec.Reader (x/crypto/cryptobyte), whose errors wrap ErrMalformed.

// readPlatform reads a platform name: 1 to maxPlatformLen bytes behind a
// 1-byte length.
func readPlatform(r *codec.Reader) string {
	p := r.Var8("platform")
	if r.Err() == nil && (len(p) == 0 || len(p) > maxPlatformLen) {
		r.Fail("platform name length %d", len(p))
	}
	return string(p)
}

// marshalTail finishes the encoding of a quote or sealed blob (what):
// head, which holds the platform name, then tail (its evidence or payload,
// tailName) of at most max bytes behind a 4-byte length.
func marshalTail(what, platform string, head []byte, tailName string, tail []byte, max int) ([]byte, error) {
	if platform == "" || len(platform) > maxPlatformLen {
		return nil, fmt.Errorf("enclave: %s platform name length %d out of range", what, len(platform))
	}
	if len(tail) > max {
		return nil, fmt.Errorf("enclave: %s %s is %d bytes, limit %d", what, tailName, len(tail), max)
	}
	return codec.AppendVar(head, tail), nil
}
