package transport

import (
	"context"
	"fmt"
)

// Handle registers h for calls of the given kind (1..64 bytes of printable
// ASCII, no spaces), replacing any earlier handler. It panics on an invalid
// kind or a nil h, as http.HandleFunc does: both are programming errors.
func (t *Transport) Handle(kind string, h Handler) {
	if err := checkKind(kind); err != nil {
		panic(err)
	}
	if h == nil {
		panic("transport: nil handler")
	}
	t.mu.Lock()
	t.handlers[kind] = h
	t.mu.Unlock()
}

// Call sends body to peer to's handler for kind and returns its answer.
// Without a deadline on ctx, SessionTimeout applies. Errors wrap
// *PeerDownError when the peer cannot be reached or the link breaks before
// the answer, *RemoteError when its handler failed, or ctx.Err().
func (t *Transport) Call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error) {
	resp, err := t.call(ctx, to, kind, body)
	if err != nil {
		return nil, fmt.Errorf("transport: call %q to peer %d: %w", kind, to, err)
	}
	return resp, nil
}

func (t *Transport) call(ctx context.Context, to uint16, kind string, body []byte) ([]byte, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	l := t.links[to]
	if l == nil {
		return nil, fmt.Errorf("peer %d is not configured", to)
	}
	if t.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.opts.SessionTimeout)
		defer cancel()
	}
	pc, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	id, ch, err := pc.call()
	if err != nil {
		return nil, &PeerDownError{Peer: to, Err: err}
	}
	t.stats.callsSent.Add(1)
	if err := pc.send(&frame{typ: frameRequest, id: id, kind: kind, body: body}); err != nil {
		pc.forget(id)
		return nil, &PeerDownError{Peer: to, Err: err}
	}
	select {
	case f := <-ch:
		if !f.ok {
			return nil, &RemoteError{Peer: to, Kind: kind, Message: string(f.body)}
		}
		return f.body, nil
	case <-pc.done:
		return nil, &PeerDownError{Peer: to, Err: pc.closeErr()}
	case <-ctx.Done():
		pc.forget(id)
		return nil, ctx.Err()
	case <-t.ctx.Done():
		pc.forget(id)
		return nil, ErrClosed
	}
}

// serveCall runs the handler for one request and answers it.
func (t *Transport) serveCall(pc *peerConn, f *frame) {
	t.mu.Lock()
	h := t.handlers[f.kind]
	t.mu.Unlock()
	resp := &frame{typ: frameResponse, id: f.id}
	if h == nil {
		resp.body = []byte(fmt.Sprintf("no handler for %q", f.kind))
	} else {
		// The handler's context ends with the connection or the transport.
		ctx, cancel := context.WithCancel(t.ctx)
		go func() {
			select {
			case <-pc.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		body, err := h(ctx, pc.peer, f.body)
		cancel()
		t.stats.callsServed.Add(1)
		switch {
		case err != nil:
			resp.body = errorText(err)
		case len(body) > MaxBody:
			resp.body = []byte(fmt.Sprintf("answer of %d bytes exceeds %d", len(body), MaxBody))
		default:
			resp.ok, resp.body = true, body
		}
	}
	if err := pc.send(resp); err != nil {
		t.log.Debug("could not answer a call", "peer", pc.peer, "kind", f.kind, "err", err)
	}
}
