//go:build race

package node

// raceEnabled: the race detector makes threshold signing ~10x slower, so
// the load-sensitive flood test (whose promise is about a cluster at its
// real speed) runs without it, in scripts/test's step "load-sensitive
// tests".
const raceEnabled = true
