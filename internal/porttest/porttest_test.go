package porttest

import (
	"net"
	"strconv"
	"testing"
)

func TestBlockIsFreeAndExclusive(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		base := Block(t, BlockSize)
		if seen[base] {
			t.Fatalf("block %d handed out twice while still held", base)
		}
		seen[base] = true
		if base < lowest || base+BlockSize > ephemeralLow() {
			t.Fatalf("block %d..%d not between %d and the ephemeral range at %d", base, base+BlockSize, lowest, ephemeralLow())
		}
	}
}

func TestBlockSkipsBusyPorts(t *testing.T) {
	base := Block(t, 4)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+2))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if allFree(base, 4) {
		t.Fatal("a block with a listening port counted as free")
	}
}

func TestBlockRefusesSize(t *testing.T) {
	for _, n := range []int{0, BlockSize + 1} {
		if _, _, err := Reserve(n); err == nil {
			t.Errorf("%d ports handed out", n)
		}
	}
}
