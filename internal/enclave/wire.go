package enclave

import "github.com/keymesh/keymesh/internal/codec"

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
