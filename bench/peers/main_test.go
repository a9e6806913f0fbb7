package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/bench/peers/peer"
)

type fake struct {
	name string
	t, n int
}

func (f fake) Name() string                                   { return f.name }
func (f fake) T() int                                         { return f.t }
func (f fake) N() int                                         { return f.n }
func (f fake) Note() string                                   { return "" }
func (f fake) Keygen() (peer.Key, error)                      { return nil, errors.New("fake") }
func (f fake) Sign(peer.Key, []byte) (*peer.Signature, error) { return nil, errors.New("fake") }

func TestWriteTableRatios(t *testing.T) {
	ms := time.Millisecond
	results := []peer.Result{
		{Protocol: fake{"keymesh DKLs23", 2, 3}, Keygen: peer.Summarize([]time.Duration{200 * ms}), Sign: peer.Summarize([]time.Duration{4 * ms, 5 * ms, 6 * ms}), BytesPerSig: 100},
		{Protocol: fake{"slow", 2, 3}, Keygen: peer.Summarize([]time.Duration{2 * time.Second}), Sign: peer.Summarize([]time.Duration{500 * ms}), BytesPerSig: 9},
		{Protocol: fake{"other n", 3, 5}, Keygen: peer.Summarize([]time.Duration{ms}), Sign: peer.Summarize([]time.Duration{ms})},
		{Protocol: peer.Unavailable("gone", 2, 3, errors.New("does not build")), Err: fmt.Errorf("%w: does not build", peer.ErrUnavailable)},
	}
	var buf bytes.Buffer
	writeTable(&buf, results)
	out := buf.String()
	for _, want := range []string{
		"| keymesh DKLs23 | 2-of-3 | 200ms (n=1) | 5ms (n=3) | 1.0× | 1.0× | 100 |",
		"| slow | 2-of-3 | 2s (n=1) | 500ms (n=1) | 10.0× | 100.0× | 9 |",
		"| other n | 3-of-5 | 1ms (n=1) | 1ms (n=1) | n/a | n/a | n/a |",
		"| gone | 2-of-3 | n/a | n/a | n/a | n/a | n/a | not available: does not build |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run([]string{"-preparams", "cached"}, &out, &errs); err == nil {
		t.Fatal("accepted -preparams cached")
	}
	if err := run([]string{"extra"}, &out, &errs); err == nil {
		t.Fatal("accepted a positional argument")
	}
}
