package load

import (
	"context"
	"net"
	"testing"
	"time"
)

// slowServer accepts connections on a real loopback socket and, if
// closeAfter > 0, closes each that long after it sent something.
func slowServer(t *testing.T, closeAfter time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64)
				if n, _ := c.Read(buf); n == 0 || string(buf[:4]) != "GET " {
					return
				}
				if closeAfter > 0 {
					time.Sleep(closeAfter)
					return
				}
				c.Read(buf) // until the client closes it
			}()
		}
	}()
	return ln.Addr().String()
}

// TestHoldSlowHolds: without redial, every connection is dialled once and
// held; Stop closes them all.
func TestHoldSlowHolds(t *testing.T) {
	s, err := HoldSlow(context.Background(), SlowOptions{Addr: slowServer(t, 0), Conns: 20, Sources: []string{"127.0.0.1", "127.0.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); s.Open() != 20; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("open %d, dialled %d, failed %d", s.Open(), s.Dialled(), s.Failed())
		}
	}
	s.Stop()
	if s.Open() != 0 || s.Dialled() != 20 {
		t.Fatalf("after Stop: open %d, dialled %d", s.Open(), s.Dialled())
	}
}

// TestHoldSlowRedials: with redial, a connection the server closes is
// dialled again: more connects than connections.
func TestHoldSlowRedials(t *testing.T) {
	s, err := HoldSlow(context.Background(), SlowOptions{Addr: slowServer(t, 10*time.Millisecond), Conns: 10, Redial: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); s.Dialled() < 50; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dialled %d of 10 connections redialling", s.Dialled())
		}
	}
	s.Stop()
	if s.Open() != 0 {
		t.Fatalf("open %d after Stop", s.Open())
	}
	if _, err := HoldSlow(context.Background(), SlowOptions{Addr: "x", Conns: 1, Sources: []string{"nope"}}); err == nil {
		t.Fatal("a source that is not an IP accepted")
	}
}
