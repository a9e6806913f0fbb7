package transport

import "context"

// A Gate admits the compute steps of a session (round.Session's Start and
// each Handle: the protocol's maths, no I/O) to the cores. The wallet puts
// one in a session's context (WithGate) so that, when the cores are
// saturated, the steps of a scope that used little CPU lately run before
// those of a scope flooding the node (issue 16): without it, a quiet
// scope's step waits behind every runnable step of the noisy one in the Go
// run queue. Enter blocks until the step may run or ctx ends; the step
// calls exit when it is done, before its messages are sent.
type Gate interface {
	Enter(ctx context.Context) (exit func(), err error)
}

type gateKey struct{}

// WithGate returns ctx carrying g for the sessions run under it.
func WithGate(ctx context.Context, g Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// step runs f through ctx's gate, if any.
func step[T any](ctx context.Context, f func() (T, error)) (T, error) {
	g, _ := ctx.Value(gateKey{}).(Gate)
	if g == nil {
		return f()
	}
	exit, err := g.Enter(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	defer exit()
	return f()
}
