package httpapi

import (
	"container/list"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Connection caps (issue 16: 20,100 slow connections exhausted the node's
// file descriptors and /healthz went unanswered for 15 s). LimitListener
// wraps the API listener so that the node holds at most Max connections,
// and at most PerClient from one client address (SourceOf of the TCP peer:
// an IPv4 address or an IPv6 /64).
//
// A connection over a cap is not simply refused, or a flood of slow
// connections would lock everyone else out: the oldest connection of the
// same group (the address's, or all of them) that has no request being
// served — one still sending its request headers, or idle between
// requests — is closed to make room. Only when every connection of the
// group is serving a request is the new one closed at once. So a client
// that opens more connections than its share only churns its own, and a
// prober of /healthz from another address always gets in; from the same
// address too, unless all of that address's connections are mid-request.
// Half-sent headers are cut anyway after ReadHeaderTimeout.
//
// Before any cap, a new connection is charged to its source's connection
// rate (connrate.go): one over it is reset at once and closes nobody, so a
// client that dials again as soon as it is closed cannot turn the caps'
// evictions into a connection flood.

// ConnLimits configure LimitListener; zero fields take the defaults.
type ConnLimits struct {
	Max       int // all connections; DefaultMaxConns if 0
	PerClient int // connections of one client address; DefaultMaxConnsPerClient if 0
	// Rate bounds the new connections a second from one client address
	// (connrate.go); DefaultConnRate if zero, none if PerSecond < 0.
	Rate Rate
	// Exempt are sources never charged to Rate: the trusted reverse
	// proxies, whose address every client behind them shares.
	Exempt []netip.Prefix
}

// Defaults of ConnLimits: well under the usual file descriptor limits
// (a node also needs descriptors for its peers and its store), and more
// per address than keymesh bench opens.
const (
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerClient = 256
)

// LimitListener returns ln holding to limits. Connections it returns must
// be served by a server from NewServer (which tells the listener which of
// them are serving a request).
func LimitListener(ln net.Listener, limits ConnLimits) *LimitedListener {
	if limits.Max <= 0 {
		limits.Max = DefaultMaxConns
	}
	if limits.PerClient <= 0 {
		limits.PerClient = DefaultMaxConnsPerClient
	}
	if limits.Rate == (Rate{}) {
		limits.Rate = DefaultConnRate
	}
	l := &LimitedListener{Listener: ln, limits: limits, byAddr: map[string]*list.List{}}
	if limits.Rate.PerSecond > 0 {
		l.rate = newConnRate(limits.Rate, limits.Exempt, 0)
		l.raw = newRawAccepter(ln, l.rate, func() { l.rateRefused.Add(1) })
	}
	return l
}

// LimitedListener is a net.Listener with connection caps (LimitListener).
type LimitedListener struct {
	net.Listener
	limits ConnLimits

	mu     sync.Mutex
	all    list.List             // of *limitedConn, oldest first
	byAddr map[string]*list.List // of *limitedConn, oldest first
	rate   *connRate             // nil: no connection rate
	raw    *rawAccepter          // nil: accept through Listener

	evicted, refused, rateRefused atomic.Int64
}

// limitedConn is a connection LimitedListener accepted.
type limitedConn struct {
	net.Conn
	l        *LimitedListener
	addr     string
	inAll    *list.Element // nil once unlinked
	inAddr   *list.Element
	serving  atomic.Int32 // requests being served (ServeHTTP running)
	closeErr error
	once     sync.Once
}

// Accept returns the next connection within the caps, closing others as
// the package doc says.
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		var c net.Conn
		var err error
		if l.raw != nil {
			c, err = l.raw.accept() // charged to the rate already
		} else {
			c, err = l.Listener.Accept()
		}
		if err != nil {
			return nil, err
		}
		if src, ok := sourceAddr(c.RemoteAddr()); l.raw == nil && ok && !l.rate.allow(src) {
			l.rateRefused.Add(1)
			reset(c)
			continue
		}
		lc := &limitedConn{Conn: c, l: l, addr: SourceOf(c.RemoteAddr().String())}
		victims, ok := l.admit(lc)
		for _, v := range victims {
			v.Conn.Close() // its server goroutine sees the error and calls Close
		}
		if ok {
			return lc, nil
		}
		l.refused.Add(1)
		c.Close()
	}
}

// admit links c, choosing the connections to close first; false if c must
// be closed instead.
func (l *LimitedListener) admit(c *limitedConn) (victims []*limitedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	own := l.byAddr[c.addr]
	if own != nil && own.Len() >= l.limits.PerClient {
		v := oldestIdle(own)
		if v == nil {
			return nil, false
		}
		l.unlink(v)
		victims = append(victims, v)
	}
	if l.all.Len() >= l.limits.Max {
		v := oldestIdle(&l.all)
		if v == nil {
			return victims, false
		}
		l.unlink(v)
		victims = append(victims, v)
	}
	l.evicted.Add(int64(len(victims)))
	if own = l.byAddr[c.addr]; own == nil {
		own = list.New()
		l.byAddr[c.addr] = own
	}
	c.inAll = l.all.PushBack(c)
	c.inAddr = own.PushBack(c)
	return victims, true
}

// oldestIdle returns the first connection of ls serving no request.
func oldestIdle(ls *list.List) *limitedConn {
	for e := ls.Front(); e != nil; e = e.Next() {
		if c := e.Value.(*limitedConn); c.serving.Load() == 0 {
			return c
		}
	}
	return nil
}

// unlink removes c from the lists; l.mu must be held.
func (l *LimitedListener) unlink(c *limitedConn) {
	if c.inAll == nil {
		return
	}
	l.all.Remove(c.inAll)
	own := l.byAddr[c.addr]
	own.Remove(c.inAddr)
	if own.Len() == 0 {
		delete(l.byAddr, c.addr)
	}
	c.inAll, c.inAddr = nil, nil
}

// Open returns the number of connections held.
func (l *LimitedListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.Len()
}

// Evicted and Refused count the connections closed to make room and the
// new connections closed at once because every connection of their group
// was serving; RateRefused counts those reset for their source's
// connection rate.
func (l *LimitedListener) Evicted() int64     { return l.evicted.Load() }
func (l *LimitedListener) Refused() int64     { return l.refused.Load() }
func (l *LimitedListener) RateRefused() int64 { return l.rateRefused.Load() }

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.unlink(c)
		c.l.mu.Unlock()
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

type connKey struct{}

// connContext is http.Server.ConnContext for NewServer: it lets ServeHTTP
// find the limitedConn a request came on (servingConn).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := c.(*limitedConn); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// servingConn marks the connection of ctx as serving a request until the
// returned function is called.
func servingConn(ctx context.Context) func() {
	lc, ok := ctx.Value(connKey{}).(*limitedConn)
	if !ok {
		return func() {}
	}
	lc.serving.Add(1)
	return func() { lc.serving.Add(-1) }
}

// Close closes the listener: a blocked Accept returns net.ErrClosed.
func (l *LimitedListener) Close() error {
	err := l.Listener.Close()
	if l.raw != nil {
		l.raw.close()
	}
	return err
}
