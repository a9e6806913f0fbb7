//go:build race

package cli

// raceEnabled makes the end-to-end test lighter under the race detector
// (threshold signing is ~10x slower there).
const raceEnabled = true
