package transport

// Tests that play an attacker against the peer port (issue 16): an
// authenticated but malicious peer (a node whose key is configured), and
// unauthenticated sockets. Every socket is on loopback (127.0.0.0/8, which
// Linux routes whole to lo, so a test can dial from several source
// addresses), and every test is bounded in time and in connections.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/config"
	"github.com/keymesh/keymesh/internal/mpc/round"
)

// floodRandomSessions sends n round messages from party from, each for a
// fresh random session id, over pc, batched into few writes.
func floodRandomSessions(pc *peerConn, from uint16, n, payload int) error {
	var buf []byte
	for i := range n {
		m := &round.Message{Round: 1, From: round.PartyID(from), To: round.Broadcast, Payload: make([]byte, payload)}
		rand.Read(m.SessionID[:])
		var err error
		if buf, err = appendFrame(buf, &frame{typ: frameMsg, msg: m}); err != nil {
			return err
		}
		if len(buf) > 64<<10 || i == n-1 {
			if err := pc.writeFrame(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	return nil
}

// needLoopbackRange skips the test where the system does not route the
// whole of 127.0.0.0/8 to the loopback interface (Linux does; macOS has
// only 127.0.0.1 by default): the test dials from other source addresses.
func needLoopbackRange(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.3.1:0")
	if err != nil {
		t.Skipf("needs all of 127.0.0.0/8 on loopback: %v", err)
	}
	ln.Close()
}

// waitFor polls cond every 5ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// TestFloodOfRandomSessionsKeepsHonestSessions: node 3 is authenticated
// and malicious. It floods nodes 1 and 2 with round messages for random
// session ids, several times what their buffers for not-yet-started
// sessions hold, while nodes 1 and 2 run sessions in which one of them
// starts late (so the other's first message waits in that buffer). Every
// session completes: node 3's flood evicts only node 3's messages.
//
// Before per-peer quotas, the flood pushed node 2's buffered message out
// of node 1's shared buffer and the session timed out.
func TestFloodOfRandomSessionsKeepsHonestSessions(t *testing.T) {
	const sessions = 4
	nodes := newCluster(t, 3, func(o *Options) { o.SessionTimeout = 3 * time.Second })
	waitReachable(t, nodes, 1, 2, 3)
	pendingMax := nodes[0].tr.opts.PendingMax
	evil := []*peerConn{rawLink(t, nodes[2], nodes[0]), rawLink(t, nodes[2], nodes[1])}

	// A steady background flood to both honest nodes for the whole test.
	ctx, stop := context.WithCancel(context.Background())
	var flooders sync.WaitGroup
	var sent atomic.Int64
	for _, pc := range evil {
		flooders.Go(func() {
			for ctx.Err() == nil {
				if floodRandomSessions(pc, 3, 64, 256) != nil {
					return
				}
				sent.Add(64)
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer func() { stop(); flooders.Wait() }()

	both := []round.PartyID{1, 2}
	for i := range sessions {
		// late is the party that starts after the other's first message
		// arrived and after a burst of 3×PendingMax flood messages.
		late := both[i%2]
		early := both[1-i%2]
		lateNode, earlyNode := nodes[late-1], nodes[early-1]
		startedBefore := earlyNode.tr.Stats().SessionsStarted
		res := runCommitRevealGated(context.Background(), nodes, both, map[round.PartyID]func(){late: func() {
			if !waitFor(5*time.Second, func() bool { return earlyNode.tr.Stats().SessionsStarted > startedBefore }) {
				return
			}
			time.Sleep(50 * time.Millisecond) // the early party's round 1 is on its way
			frames := lateNode.tr.Stats().FramesReceived
			if err := floodRandomSessions(evil[late-1], 3, 3*pendingMax, 256); err != nil {
				t.Errorf("flood: %v", err)
			}
			waitFor(5*time.Second, func() bool {
				return lateNode.tr.Stats().FramesReceived >= frames+uint64(3*pendingMax)
			})
		}})
		if err := res.agree(both); err != nil {
			t.Fatalf("session %d (party %d late) under a flood from node 3: %v", i, late, err)
		}
	}
	// The flood was real: far more than the buffers hold, most of it dropped.
	for _, nd := range nodes[:2] {
		if st := nd.tr.Stats(); st.MessagesDropped < uint64(pendingMax) {
			t.Fatalf("node %d dropped %d messages; the flood did not overflow its buffer (%+v)", nd.cfg.ID, st.MessagesDropped, st)
		}
	}
	t.Logf("node 3 sent %d flood messages in the background, plus %d in bursts", sent.Load(), sessions*3*pendingMax)
}

// TestPendingQuotaIsPerPeer drives the buffer for not-yet-started sessions
// directly: a peer that fills the per-session limit for a session id, or
// floods other ids, evicts none of another peer's messages.
func TestPendingQuotaIsPerPeer(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	tr := nodes[0].tr
	msg := func(sid round.SessionID, from uint16) *round.Message {
		return &round.Message{SessionID: sid, Round: 1, From: round.PartyID(from), To: round.Broadcast, Payload: []byte{byte(from)}}
	}
	var target round.SessionID
	rand.Read(target[:])
	// Node 3 learned the id (say, from an invitation) and fills its slots
	// before node 2's message arrives.
	for range 2 * pendingPerSession {
		tr.deliver(msg(target, 3))
	}
	tr.deliver(msg(target, 2))
	// Then it floods random ids, twice what the buffer holds.
	for range 2 * tr.opts.PendingMax {
		var sid round.SessionID
		rand.Read(sid[:])
		tr.deliver(msg(sid, 3))
	}
	tr.mu.Lock()
	got := tr.takePendingLocked(target)
	tr.mu.Unlock()
	from2 := 0
	for _, m := range got {
		if m.From == 2 {
			from2++
		}
	}
	if from2 != 1 {
		t.Fatalf("node 2's message for the session was evicted by node 3 (%d messages kept, %d from node 2)", len(got), from2)
	}
}

// TestMaxFrameAnnouncementsDoNotAllocate: the malicious node 2 opens 100
// authenticated connections to node 1, each announcing a frame of the
// maximum size and sending one byte of it. The process's live heap
// (runtime.ReadMemStats after a GC, while the connections are held open)
// must not grow by more than heapBound = 100 × (frameChunk + readBufSize)
// = 12.5 MiB: what the 100 connections' frame and read buffers would cost
// even if node 1 kept them all (it keeps maxInboundPerPeer). Measured:
// about 1.5 MiB. Before the fix each announcement allocated maxFrame
// (4.2 MiB) up front: the heap grew by 412 MiB.
func TestMaxFrameAnnouncementsDoNotAllocate(t *testing.T) {
	const conns = 100
	const heapBound = conns * (frameChunk + readBufSize)
	nodes := newCluster(t, 2, nil)
	waitReachable(t, nodes, 1, 2)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:], maxFrame)
	hdr[4] = frameVersion
	var held []*peerConn
	for range conns {
		pc := rawLink(t, nodes[1], nodes[0])
		held = append(held, pc)
		// Errors are expected once node 1 closed this connection.
		pc.conn.SetWriteDeadline(time.Now().Add(time.Second))
		pc.conn.Write(hdr[:])
	}
	defer func() {
		for _, pc := range held {
			pc.conn.Close()
		}
	}()
	// Node 1 reads each header as soon as its TLS record arrives; give it
	// time, then take the largest growth of a few measurements.
	var grew int64
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		grew = max(grew, int64(after.HeapAlloc)-int64(before.HeapAlloc))
	}
	t.Logf("heap grew by %.1f MiB for %d connections announcing %d-byte frames (bound %.1f MiB)", float64(grew)/(1<<20), conns, maxFrame, float64(heapBound)/(1<<20))
	if grew > heapBound {
		t.Fatalf("heap grew by %.1f MiB, more than the %.1f MiB bound", float64(grew)/(1<<20), float64(heapBound)/(1<<20))
	}
	// Node 2's own link still works (or came back): a malicious peer
	// hurts only itself.
	nodes[0].tr.Handle("echo", func(ctx context.Context, from uint16, body []byte) ([]byte, error) { return body, nil })
	if !waitFor(10*time.Second, func() bool {
		got, err := nodes[1].tr.Call(context.Background(), 1, "echo", []byte("hi"))
		return err == nil && string(got) == "hi"
	}) {
		t.Fatal("node 2 cannot call node 1 after the attack")
	}
}

// oneByteReader yields b, then fails: a peer that announced a large frame
// and stopped sending.
type oneByteReader struct{ b []byte }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// TestReadFrameAllocatesAsBytesArrive: reading a frame that announces
// maxFrame bytes but delivers one allocates about what arrived (at most
// frameChunk-sized steps), not the announced length.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	in := binary.BigEndian.AppendUint32(nil, maxFrame)
	in = append(in, frameVersion)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		if _, _, err := readFrame(&oneByteReader{b: slices.Clone(in)}); err == nil {
			t.Fatal("truncated frame read without error")
		}
	}
	runtime.ReadMemStats(&after)
	perRead := (after.TotalAlloc - before.TotalAlloc) / 10
	if perRead > 256<<10 {
		t.Fatalf("reading a 1-byte prefix of a %d-byte frame allocated %d bytes", maxFrame, perRead)
	}
	// A complete large frame still reads back whole.
	m := testMessage()
	m.Payload = bytes.Repeat([]byte{7}, round.MaxPayload)
	enc, _ := appendFrame(nil, &frame{typ: frameMsg, msg: m})
	f, n, err := readFrame(bytes.NewReader(enc))
	if err != nil || n != len(enc) || !bytes.Equal(f.msg.Payload, m.Payload) {
		t.Fatalf("max frame: n=%d err=%v", n, err)
	}
}

// TestInboundConnectionsCappedPerPeer: node 2 opens 10 authenticated
// connections to node 1; node 1 keeps at most maxInboundPerPeer of them
// (node 2's own link included) and closes the oldest. Before the cap all
// stayed open.
func TestInboundConnectionsCappedPerPeer(t *testing.T) {
	const conns = 10
	nodes := newCluster(t, 2, nil)
	waitReachable(t, nodes, 1, 2)
	var held []*peerConn
	for range conns {
		held = append(held, rawLink(t, nodes[1], nodes[0]))
	}
	defer func() {
		for _, pc := range held {
			pc.conn.Close()
		}
	}()
	// A closed connection reads EOF at once; an open one times out. All
	// are read at once, well within node 1's PingTimeout.
	var open atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	for _, pc := range held {
		wg.Go(func() {
			pc.conn.SetReadDeadline(deadline)
			var b [1]byte
			_, err := pc.conn.Read(b[:])
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				open.Add(1)
			}
		})
	}
	wg.Wait()
	if n := int(open.Load()); n > maxInboundPerPeer || n == 0 {
		t.Fatalf("node 1 keeps %d connections from node 2 open, want 1..%d", n, maxInboundPerPeer)
	}
	// The newest one is kept: it answers a ping.
	last := held[len(held)-1]
	last.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := last.send(&frame{typ: framePing, id: 9}); err != nil {
		t.Fatalf("newest connection: %v", err)
	}
	if f, _, err := readFrame(last.conn); err != nil || f.typ != framePong || f.id != 9 {
		t.Fatalf("newest connection: no pong: %v", err)
	}
}

// TestHandlersCappedPerPeer: node 2 sends 2×maxConcurrentCalls requests to
// a handler that blocks, spread over two connections. At most
// maxConcurrentCalls of node 2's run at once (the rest are answered busy),
// and node 3's calls are still served. Before, the limit was per
// connection: node 2 ran twice as many by opening a second one.
func TestHandlersCappedPerPeer(t *testing.T) {
	nodes := newCluster(t, 3, nil)
	waitReachable(t, nodes, 1, 2, 3)
	release := make(chan struct{})
	var running, peak atomic.Int32
	nodes[0].tr.Handle("hold", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		if from == 2 {
			n := running.Add(1)
			defer running.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return []byte("ok"), nil
	})
	defer close(release)
	links := []*peerConn{rawLink(t, nodes[1], nodes[0]), rawLink(t, nodes[1], nodes[0])}
	id := uint64(100)
	for _, pc := range links {
		for range maxConcurrentCalls {
			id++
			if err := pc.send(&frame{typ: frameRequest, id: id, kind: "hold"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait until node 1 has taken them all in (running or answered busy).
	tr := nodes[0].tr
	if !waitFor(5*time.Second, func() bool {
		return int(running.Load())+int(tr.Stats().CallsBusy) >= 2*maxConcurrentCalls
	}) {
		t.Fatalf("node 1 took in %d requests (%d running, %d busy), want %d", int(running.Load())+int(tr.Stats().CallsBusy), running.Load(), tr.Stats().CallsBusy, 2*maxConcurrentCalls)
	}
	time.Sleep(100 * time.Millisecond)
	if p := peak.Load(); p != maxConcurrentCalls {
		t.Fatalf("node 2 ran %d handlers at once on node 1, want exactly the cap %d", p, maxConcurrentCalls)
	}
	if b := tr.Stats().CallsBusy; b != maxConcurrentCalls {
		t.Fatalf("%d requests answered busy, want %d", b, maxConcurrentCalls)
	}
	// Node 3 is served meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := nodes[2].tr.Call(ctx, 1, "hold", nil); err != nil || string(got) != "ok" {
		t.Fatalf("node 3's call while node 2 saturates its handlers: %q %v", got, err)
	}
}

// idleSockets keeps n idle TCP connections from the given source addresses
// (round robin) to addr open until ctx is done, reopening each one the
// server closes. It never sends a byte: an unauthenticated socket that
// holds a handshake slot.
func idleSockets(ctx context.Context, addr string, n int, from []string) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range n {
		src := from[i%len(from)]
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				io.Copy(io.Discard, c) // returns when the server closes it
				stop()
				c.Close()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return &wg
}

// TestIdleSocketsDoNotBlockRedial: 64 idle unauthenticated sockets to
// node 1's peer port, kept open and reopened as node 1 closes them, from
// one source address and then from 64 different ones. Node 2's link to
// node 1 is cut; its redial gets through within redialBound, far less
// than the 10 s the sockets were held before (the server's handshake
// timeout was DialTimeout, set to 10 s here). Before the fix, 64 sockets
// filled every handshake slot and node 1 shed node 2's redials.
func TestIdleSocketsDoNotBlockRedial(t *testing.T) {
	const sockets = 64
	const redialBound = 3 * time.Second
	needLoopbackRange(t)
	many := make([]string, sockets)
	for i := range many {
		many[i] = fmt.Sprintf("127.0.3.%d", i+1)
	}
	for _, tc := range []struct {
		name string
		from []string
	}{
		{"one address", []string{"127.0.0.2"}},
		{"64 addresses", many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := newCluster(t, 2, func(o *Options) { o.DialTimeout = 10 * time.Second })
			waitReachable(t, nodes, 1, 2)
			nodes[0].tr.Handle("echo", func(ctx context.Context, from uint16, body []byte) ([]byte, error) { return body, nil })
			ctx, stop := context.WithCancel(context.Background())
			wg := idleSockets(ctx, nodes[0].ln.Addr().String(), sockets, tc.from)
			defer func() { stop(); wg.Wait() }()
			time.Sleep(300 * time.Millisecond) // the sockets are accepted

			nodes[1].tr.links[1].current().close(errors.New("test: link cut"))
			start := time.Now()
			if !waitFor(redialBound, func() bool {
				cctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				got, err := nodes[1].tr.Call(cctx, 1, "echo", []byte("hi"))
				return err == nil && string(got) == "hi"
			}) {
				t.Fatalf("node 2 could not redial node 1 within %v while %d idle sockets were open: %+v", redialBound, sockets, nodes[1].tr.Peers())
			}
			t.Logf("link back after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestRunningSessionQueueIsPerPeer: a party flooding a running session's
// inbox fills only its own share, and a node that is not a party of the
// session queues nothing. Before, the queue's maxQueue slots were shared:
// a flood from party 3 made node 1 drop party 2's messages.
func TestRunningSessionQueueIsPerPeer(t *testing.T) {
	r := &runner{peers: []round.PartyID{2, 3}, maxBytes: 1 << 20, wake: make(chan struct{}, 1)}
	msg := func(from round.PartyID, payload int) *round.Message {
		return &round.Message{Round: 1, From: from, To: round.Broadcast, Payload: make([]byte, payload)}
	}
	kept := 0
	for range maxQueue + 10 {
		if r.push(msg(3, 1)) {
			kept++
		}
	}
	if kept > maxQueue {
		t.Fatalf("party 3 queued %d messages, want at most %d", kept, maxQueue)
	}
	if !r.push(msg(2, 1)) {
		t.Fatal("party 2's message dropped while party 3 flooded the session")
	}
	if r.push(msg(4, 1)) {
		t.Fatal("a message from a node that is not a party was queued")
	}
	// The byte share: party 2 cannot queue more than maxBytes.
	if r.push(msg(2, 1<<20)) {
		t.Fatal("party 2 queued more than its byte share")
	}
	// Taking the queue frees the shares.
	if q, _ := r.take(); len(q) != kept+1 {
		t.Fatalf("took %d messages, want %d", len(q), kept+1)
	}
	if !r.push(msg(3, 1)) {
		t.Fatal("party 3's share not freed by take")
	}
}

// fakeConn is a net.Conn from a chosen source address, for driving the
// handshake slots directly.
type fakeConn struct {
	net.Conn
	from   *net.TCPAddr
	closed atomic.Bool
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.from }
func (c *fakeConn) Close() error         { c.closed.Store(true); return nil }

// TestHandshakeSlots drives admitHandshake: one address gets at most
// maxHandshakesPerAddr slots; when all maxHandshakes are taken, a newcomer
// from an address holding fewer slots evicts the oldest handshake of the
// address holding the most, and a newcomer from a top address is refused.
func TestHandshakeSlots(t *testing.T) {
	// A transport that serves no listener, so only this test takes slots.
	id1, _ := config.GenerateIdentity()
	id2, _ := config.GenerateIdentity()
	tr, err := New(Options{Self: makeConfigs([]*config.Identity{id1, id2}, []string{"127.0.0.1:9", "127.0.0.1:9"})[0], Identity: id1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn := func(ip string) *fakeConn { return &fakeConn{from: &net.TCPAddr{IP: net.ParseIP(ip), Port: 1}} }
	var big []*fakeConn // 127.0.5.1 takes its whole per-address share
	for i := range maxHandshakesPerAddr + 3 {
		c := conn("127.0.5.1")
		h := tr.admitHandshake(c)
		if (h != nil) != (i < maxHandshakesPerAddr) {
			t.Fatalf("connection %d from one address admitted=%v", i, h != nil)
		}
		if h != nil {
			big = append(big, c)
		}
	}
	// Fill the rest from other addresses, one slot each.
	var small []*handshake
	for i := 0; tr.hsCount < maxHandshakes; i++ {
		h := tr.admitHandshake(conn(fmt.Sprintf("127.0.6.%d", i+1)))
		if h == nil {
			t.Fatalf("slot %d refused before the table was full", tr.hsCount)
		}
		small = append(small, h)
	}
	// A redial from a fresh address evicts 127.0.5.1's oldest.
	if tr.admitHandshake(conn("127.0.0.1")) == nil {
		t.Fatal("a fresh address was refused a slot while one address held many")
	}
	if !big[0].closed.Load() || big[1].closed.Load() {
		t.Fatal("the evicted handshake is not the oldest of the address holding most slots")
	}
	if tr.hsCount != maxHandshakes {
		t.Fatalf("%d handshakes in progress, want %d", tr.hsCount, maxHandshakes)
	}
	// A newcomer from the address holding the most slots is refused; one
	// from an address holding fewer evicts that address's next oldest.
	if tr.admitHandshake(conn("127.0.5.1")) != nil {
		t.Fatal("the address holding the most slots took one more while all were taken")
	}
	if tr.admitHandshake(conn("127.0.6.1")) == nil || !big[1].closed.Load() {
		t.Fatal("an address holding one slot could not evict from the one holding the most")
	}
	// Releasing gives the slots back; an evicted handshake's release is a no-op.
	for _, h := range small {
		tr.releaseHandshake(h)
	}
	if tr.hsCount != maxHandshakes-len(small) {
		t.Fatalf("%d handshakes after releasing %d of %d", tr.hsCount, len(small), maxHandshakes)
	}
}

// refusedLog counts the transport's "peer connection refused" records by
// level.
type refusedLog struct{ warn, debug atomic.Int64 }

func (h *refusedLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *refusedLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "peer connection refused" {
		return nil
	}
	if r.Level >= slog.LevelWarn {
		h.warn.Add(1)
	} else {
		h.debug.Add(1)
	}
	return nil
}
func (h *refusedLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *refusedLog) WithGroup(string) slog.Handler      { return h }

// TestRefusedConnectionsDoNotFloodLog: 200 sockets that fail the TLS
// handshake at once give at most one warning per abuseLogInterval; the
// rest are debug records and all are counted. Before, each one was a
// warning.
func TestRefusedConnectionsDoNotFloodLog(t *testing.T) {
	const sockets = 200
	needLoopbackRange(t)
	h := &refusedLog{}
	nd := newCluster(t, 2, func(o *Options) { o.Logger = slog.New(h) })[0]
	start := time.Now()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	for range sockets {
		c, err := d.Dial("tcp", nd.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		c.Close()
	}
	if !waitFor(10*time.Second, func() bool { return nd.tr.Stats().ConnsRejected >= sockets }) {
		t.Fatalf("%d connections rejected, want %d", nd.tr.Stats().ConnsRejected, sockets)
	}
	elapsed := time.Since(start)
	limit := int64(elapsed/abuseLogInterval) + 1
	if w := h.warn.Load(); w > limit || w == 0 {
		t.Fatalf("%d warnings for %d refused connections in %v, want 1..%d", w, sockets, elapsed, limit)
	}
	t.Logf("%d warnings, %d debug records for %d refused connections in %v", h.warn.Load(), h.debug.Load(), sockets, elapsed.Round(time.Millisecond))
}

// TestHandlerBytesCappedPerPeer: node 2 sends 8 requests with MaxBody
// bodies to a handler that blocks. Their bodies may hold at most
// maxCallBytesPerPeer at once: 4 run, the others are answered busy. Before,
// all 8 ran (and 64 could hold 256 MiB).
func TestHandlerBytesCappedPerPeer(t *testing.T) {
	const requests = 8
	nodes := newCluster(t, 2, nil)
	waitReachable(t, nodes, 1, 2)
	release := make(chan struct{})
	var running atomic.Int32
	nodes[0].tr.Handle("hold", func(ctx context.Context, from uint16, body []byte) ([]byte, error) {
		running.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte("ok"), nil
	})
	defer close(release)
	pc := rawLink(t, nodes[1], nodes[0])
	defer pc.close(nil)
	body := make([]byte, MaxBody)
	for i := range requests {
		if err := pc.send(&frame{typ: frameRequest, id: uint64(i + 1), kind: "hold", body: body}); err != nil {
			t.Fatal(err)
		}
	}
	// Read the busy answers (the running ones answer only when released).
	want := requests - maxCallBytesPerPeer/MaxBody
	pc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for busy := 0; busy < want; {
		f, _, err := readFrame(pc.conn)
		if err != nil {
			t.Fatalf("after %d busy answers: %v (%d handlers running)", busy, err, running.Load())
		}
		if f.typ == frameResponse && !f.ok && string(f.body) == "busy" {
			busy++
		}
	}
	waitFor(2*time.Second, func() bool { return int(running.Load()) >= requests-want })
	if n := int(running.Load()); n != maxCallBytesPerPeer/MaxBody {
		t.Fatalf("%d handlers of %d-byte requests running, want %d", n, MaxBody, maxCallBytesPerPeer/MaxBody)
	}
}
