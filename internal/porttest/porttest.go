// Package porttest hands tests ranges of consecutive TCP ports on
// 127.0.0.1 that stay theirs until the test ends.
//
// Tests that start whole clusters need fixed ports: a node's config names
// its peers' addresses before any of them listens, and `keymesh dev`
// restarts on the ports it chose the first time. Picking such ports by
// listening on :0 and closing the listener is racy twice over: the kernel
// hands the same ephemeral range to every outgoing connection of every
// other test process, and two test processes picking at once can choose
// the same range. Both showed up in CI as "bind: address already in use".
//
// Block therefore picks below the kernel's ephemeral range (read from
// /proc/sys/net/ipv4/ip_local_port_range where there is one), so no
// outgoing connection or :0 listener lands in it, and locks the block with
// a lock file under the temporary directory, so no other test process
// using this package takes it while the test runs. Ports used by programs
// outside the test suite are still seen: every port of a block is checked
// free before the block is handed out.
package porttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BlockSize is the largest number of consecutive ports one Block call
// returns: enough for an 8-node cluster (an API and a peer port each).
const BlockSize = 16

// lowest is the first port this package hands out: above the registered
// ports most local services use.
const lowest = 20000

// Block returns the first of n consecutive ports on 127.0.0.1 that are
// free now and reserved for this test until it ends. n is at most
// BlockSize. It fails the test when no block can be found.
func Block(t testing.TB, n int) int {
	t.Helper()
	base, release, err := reserve(n)
	if err != nil {
		t.Fatalf("porttest: %v", err)
	}
	t.Cleanup(release)
	return base
}

// Reserve is Block for callers without a testing.TB (test scripts): the
// caller must call release when the ports are no longer used.
func Reserve(n int) (base int, release func(), err error) {
	return reserve(n)
}

func reserve(n int) (int, func(), error) {
	if n < 1 || n > BlockSize {
		return 0, nil, fmt.Errorf("%d ports asked for, 1 to %d allowed", n, BlockSize)
	}
	blocks := (ephemeralLow() - lowest) / BlockSize
	if blocks < 1 {
		return 0, nil, fmt.Errorf("no ports below the ephemeral range (it starts at %d)", ephemeralLow())
	}
	dir := filepath.Join(os.TempDir(), "keymesh-porttest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, nil, err
	}
	for range 100 {
		base := lowest + rand.IntN(blocks)*BlockSize
		unlock, ok := lockBlock(filepath.Join(dir, strconv.Itoa(base)))
		if !ok {
			continue
		}
		if allFree(base, n) {
			return base, unlock, nil
		}
		unlock()
	}
	return 0, nil, fmt.Errorf("no %d free consecutive ports found below %d", n, ephemeralLow())
}

func allFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range, or the
// IANA default (49152) where the range cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > lowest {
				return lo
			}
		}
	}
	return 49152
}
