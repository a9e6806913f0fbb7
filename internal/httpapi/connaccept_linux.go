package httpapi

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// On Linux, LimitedListener accepts from a TCP listener with accept4(2)
// itself (rawAccepter), so that a connection over its source's connection
// rate costs three system calls — accept4, setsockopt(SO_LINGER),
// close — instead of the eleven of net.TCPListener.Accept followed by a
// close (it registers the socket with the poller, reads its local address,
// sets keep-alive in four calls and TCP_NODELAY, and deregisters it again).
// Measured under a reconnecting flood of ~20,000 connects a second, those
// calls were most of the accept loop's time, and an accept loop that falls
// behind lets the kernel's accept queue overflow, which drops honest
// clients' SYNs (BENCHMARKS.md, issue 16). Admitted connections become
// ordinary *net.TCPConn through net.FileConn.

// rawAccepter accepts from a listening socket without the net package,
// charging each connection to rate first. It works on a duplicate of the
// listener's descriptor (a listener's own RawConn cannot wait for
// readability), registered with the runtime poller as an *os.File; close
// must be called with the listener's Close, or the duplicate keeps the
// socket listening.
type rawAccepter struct {
	ln   *net.TCPListener
	f    *os.File
	rc   syscall.RawConn
	rate *connRate
	pit  *tarpit
	// refused is called for each connection over its rate.
	refused func()
}

func newRawAccepter(ln net.Listener, rate *connRate, refused func()) *rawAccepter {
	tl, ok := ln.(*net.TCPListener)
	if !ok || rate == nil {
		return nil
	}
	dup, err := tl.File()
	if err != nil {
		return nil
	}
	fd := int(dup.Fd()) // Fd leaves dup in blocking mode: it is dup'd again below
	nfd, err := syscall.Dup(fd)
	dup.Close()
	if err != nil {
		return nil
	}
	syscall.CloseOnExec(nfd)
	if err := syscall.SetNonblock(nfd, true); err != nil {
		syscall.Close(nfd)
		return nil
	}
	f := os.NewFile(uintptr(nfd), "api-listener") // non-blocking: on the poller
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	processTarpit.once.Do(func() { processTarpit.free.Store(int64(tarpitSize())) })
	return &rawAccepter{ln: tl, f: f, rc: rc, rate: rate, pit: newTarpit(tarpitSize(), TarpitHold, &processTarpit.free), refused: refused}
}

// close closes the duplicate descriptor (a blocked accept returns
// net.ErrClosed) and resets the connections held in the tarpit.
func (a *rawAccepter) close() error {
	err := a.f.Close()
	a.pit.release()
	return err
}

// accept returns the next connection within its source's rate, resetting
// the others.
func (a *rawAccepter) accept() (net.Conn, error) {
	var (
		nfd     int
		sysErr  error
		tooMany bool
	)
	err := a.rc.Read(func(fd uintptr) bool {
		for {
			s, sa, err := syscall.Accept4(int(fd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			switch {
			case err == syscall.EAGAIN:
				return false // wait until the listener is readable
			case err == syscall.EINTR || err == syscall.ECONNABORTED:
				continue
			case err != nil:
				sysErr, tooMany = os.NewSyscallError("accept4", err), true
				return true
			}
			if src, ok := sockaddrSource(sa); ok && !a.rate.allow(src) {
				a.pit.hold(s, time.Now())
				a.refused()
				continue
			}
			nfd = s
			return true
		}
	})
	if err == nil && tooMany {
		err = sysErr
	}
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.ln.Addr(), Err: err}
	}
	f := os.NewFile(uintptr(nfd), "")
	c, err := net.FileConn(f) // a duplicate, registered with the poller
	f.Close()
	if err != nil {
		// The listener itself is fine (EMFILE on the duplicate, say):
		// temporary, so http.Server retries after a pause.
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: a.ln.Addr(), Err: temporaryError("httpapi: wrapping an accepted socket: " + err.Error())}
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetKeepAlive(true) // as net.TCPListener.Accept does
	}
	return c, nil
}

type temporaryError string

func (e temporaryError) Error() string   { return string(e) }
func (e temporaryError) Temporary() bool { return true }
func (e temporaryError) Timeout() bool   { return false }

// sockaddrSource is sourceAddr for a socket address from accept4.
func sockaddrSource(sa syscall.Sockaddr) (netip.Addr, bool) {
	var ip netip.Addr
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		ip = netip.AddrFrom4(sa.Addr)
	case *syscall.SockaddrInet6:
		ip = netip.AddrFrom16(sa.Addr).Unmap()
	default:
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr(), true
	}
	return ip, true
}

// The tarpit. A connection over its source's rate is held, unread, for up
// to TarpitHold, and then reset; when the pool is full the oldest is reset
// to make room. Holding is what slows a reconnecting attacker: each of its
// connections held is one it is not dialling again, while a connection
// reset at once comes back a moment later (measured: the node closing
// refused connections at once saw ~20,000 connects a second from 20,000
// reconnecting clients, and the bare listener that held them for its
// 5 s header timeout a quarter of that; BENCHMARKS.md). A held connection
// costs the node one descriptor and the kernel's socket: no goroutine, no
// buffer, no poller registration, twelve bytes here. The pools of a process
// share a budget sized from the descriptor limit left over by the
// connection cap (tarpitSize), so they cannot starve the node's own
// descriptors, also when one process serves several nodes. An honest client over its rate
// waits up to TarpitHold and is then reset, as a slow client is cut at
// ReadHeaderTimeout.

// TarpitHold is how long a connection over its source's rate is held
// before it is reset.
const TarpitHold = 5 * time.Second

// tarpitSize is the pool's size: the descriptors under RLIMIT_NOFILE left
// after DefaultMaxConns and a reserve of 1,024 for the node's peers, store
// and files, at most 65,536.
func tarpitSize() int {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	n := int64(rl.Cur) - DefaultMaxConns - 1024
	return int(max(0, min(n, 1<<16)))
}

// processTarpit is the descriptors every tarpit of the process may hold
// together (tarpitSize): one process may serve several nodes (keymesh dev,
// tests), and their pools share one descriptor limit.
var processTarpit struct {
	once sync.Once
	free atomic.Int64
}

// tarpit is a FIFO ring of held descriptors, each taken from a budget
// shared with other tarpits. Safe for concurrent use.
type tarpit struct {
	mu      sync.Mutex
	holdFor time.Duration
	budget  *atomic.Int64
	fd      []int32
	at      []int64 // when each was held, Unix ns
	head    int
	n       int
}

func newTarpit(size int, hold time.Duration, budget *atomic.Int64) *tarpit {
	return &tarpit{holdFor: hold, budget: budget, fd: make([]int32, size), at: make([]int64, size)}
}

// hold keeps fd, resetting expired ones and, if the pool is full, the
// oldest; with no pool fd is reset at once.
func (t *tarpit) hold(fd int, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := now.UnixNano()
	for t.n > 0 && (t.n == len(t.fd) || ns-t.at[t.head] > int64(t.holdFor)) {
		t.pop()
	}
	if t.budget.Add(-1) < 0 { // the process's budget is spent: make room in our own ring
		t.budget.Add(1)
		if t.n == 0 {
			resetFD(fd)
			return
		}
		t.pop()
		t.budget.Add(-1)
	}
	if len(t.fd) == 0 {
		t.budget.Add(1)
		resetFD(fd)
		return
	}
	i := (t.head + t.n) % len(t.fd)
	t.fd[i], t.at[i] = int32(fd), ns
	t.n++
}

// pop resets the oldest held descriptor; t.mu must be held.
func (t *tarpit) pop() {
	resetFD(int(t.fd[t.head]))
	t.budget.Add(1)
	t.head = (t.head + 1) % len(t.fd)
	t.n--
}

// held is the number of descriptors held.
func (t *tarpit) held() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// release resets every held descriptor.
func (t *tarpit) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.n > 0 {
		t.pop()
	}
}

// resetFD closes a socket with a TCP reset (SO_LINGER 0): no FIN exchange,
// no TIME_WAIT socket left on the node.
func resetFD(fd int) {
	syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
	syscall.Close(fd)
}
