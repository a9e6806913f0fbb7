package api

import (
	"fmt"
	"strconv"
	"strings"
)

// Services and their names.
//
// A node runs services (auth, wallet, and those to come) on one seam
// (internal/node, docs/services.md). Each service owns a name and, under
// it, four kinds of names, which follow one convention so that two
// services cannot collide and a reader can tell whose a name is:
//
//   - JSON-RPC methods: a constant Method… in the service's api file
//     (api/auth.go, api/wallet.go, api/counter.go), named
//     "keymesh_<verb><Noun>" in lower camel case (keymesh_createScope,
//     keymesh_counterAdd), or the EIP-1193 name where one exists
//     (personal_sign, eth_signTransaction). Another product's names are
//     aliases (Alias…), never the method's own name.
//   - Peer RPC kinds (the transport's Call and Handle): "<service>/<name>/v<N>"
//     (auth/reserve/v1, wallet/sign/v1, counter/get/v1), CheckPeerKind. A
//     change of a body's format is a new version, served beside the old
//     one while a cluster upgrades. The replication layer's kinds
//     (replica.push, replica.pull) are the node's own, not a service's, and
//     predate the convention; renaming them is a wire change left for the
//     next upgrade that breaks the peer protocol anyway.
//   - Store namespaces: "<service>/<name>" (wallet/share, counter/value).
//     Auth's older namespaces are spelt "auth.<name>" and stay so: renaming
//     stored data takes a migration, for no gain.
//   - Record kinds: one byte (record.Kind), owned by one service; a node
//     refuses to start when two of its services claim one kind, and refuses
//     a record of a kind none of its services owns. Kinds 1–63 are auth's
//     (the record package's constants, 1–8 in use), 64–199 are for the
//     services to come, in the order they land (90–99 are the vault's,
//     api/vault.go, 90–92 in use), and 200–254 for demos and
//     tests (RecordKindCounterAdd). Kind 0 is never valid.
//
// Each service's api file holds its method names, its peer RPC kinds, its
// record kinds and the wire types its clients see, so the node, the SDK and
// the CLI share one definition. CheckServiceName and CheckPeerKind are
// the checks the node runs on every service it starts.
const (
	maxServiceNameLen  = 32
	maxPeerNameLen     = 64
	maxPeerKindVersion = 1 << 16
)

// CheckServiceName reports whether name can name a service: 1 to 32
// lowercase letters and digits, starting with a letter.
func CheckServiceName(name string) error {
	if !isLowerWord(name, maxServiceNameLen, false) {
		return fmt.Errorf("api: service name %q: want 1 to %d of a-z 0-9, starting with a letter", name, maxServiceNameLen)
	}
	return nil
}

// CheckPeerKind reports whether kind is a peer RPC kind of service,
// "<service>/<name>/v<N>": name is 1 to 64 of a-z, 0-9 and '-', starting
// with a letter; N is a version from 1, written without leading zeros.
func CheckPeerKind(service, kind string) error {
	bad := func(why string) error {
		return fmt.Errorf("api: peer RPC kind %q of service %s: %s (want %s/<name>/v<N>)", kind, service, why, service)
	}
	if err := CheckServiceName(service); err != nil {
		return err
	}
	parts := strings.Split(kind, "/")
	switch {
	case len(parts) != 3:
		return bad("not three parts")
	case parts[0] != service:
		return bad("another service's prefix")
	case !isLowerWord(parts[1], maxPeerNameLen, true):
		return bad("bad name")
	case !strings.HasPrefix(parts[2], "v"):
		return bad("no version")
	}
	v := parts[2][1:]
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxPeerKindVersion || strconv.Itoa(n) != v {
		return bad("bad version")
	}
	return nil
}

// isLowerWord: 1 to max of a-z and 0-9 (and '-' if dash), starting with a
// letter.
func isLowerWord(s string, max int, dash bool) bool {
	if s == "" || len(s) > max || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || dash && c == '-') {
			return false
		}
	}
	return true
}
