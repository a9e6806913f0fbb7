//go:build !linux

package httpapi

import "net"

// rawAccepter is Linux only (connaccept_linux.go); elsewhere LimitedListener
// accepts through the net package and resets over-rate connections after.
type rawAccepter struct{}

func newRawAccepter(net.Listener, *connRate, func()) *rawAccepter { return nil }

func (*rawAccepter) accept() (net.Conn, error) { panic("unreachable") }

func (*rawAccepter) close() error { return nil }
