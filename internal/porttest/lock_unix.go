//go:build unix

package porttest

import (
	"os"
	"syscall"
)

// lockBlock takes an exclusive, non-blocking flock on path. The kernel
// drops it when the process exits, so a crashed test leaves no stale lock.
func lockBlock(path string) (unlock func(), ok bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
