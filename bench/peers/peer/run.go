package peer

import (
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// Set lists the protocols of a comparison run, keymesh first at each
// (t, n) (a goroutine per party, then sequential): DKLs23, tss-lib and CMP at 2-of-3 and 3-of-5, and the 2-of-2
// protocols (multi-party-sig Doerner, kryptology) next to DKLs23 at 2-of-2.
// tss may be nil when tss-lib's pre-parameters could not be had; its rows
// then report why instead of a time. timeout bounds each single run.
func Set(tss *TSSPreParams, tssErr error, timeout time.Duration) []Protocol {
	var ps []Protocol
	add := func(p Protocol, err error, name string, t, n int) {
		if err != nil {
			p = Unavailable(name, t, n, err)
		}
		ps = append(ps, p)
	}
	for _, tn := range [][2]int{{2, 3}, {3, 5}} {
		t, n := tn[0], tn[1]
		p, err := NewKeymesh(t, n)
		add(p, err, KeymeshName, t, n)
		p, err = NewKeymeshSequential(t, n)
		add(p, err, KeymeshName+" (sequential)", t, n)
		if tss == nil {
			if tssErr == nil {
				tssErr = errors.New("no pre-parameters")
			}
			add(nil, tssErr, "tss-lib v2.0.2 GG18/20", t, n)
		} else {
			p, err = NewTSSLib(t, n, tss, timeout)
			add(p, err, "tss-lib v2.0.2 GG18/20", t, n)
		}
		p, err = NewCMP(t, n, timeout)
		add(p, err, mpsVersion+" CMP", t, n)
	}
	p, err := NewKeymesh(2, 2)
	add(p, err, KeymeshName, 2, 2)
	p, err = NewKeymeshSequential(2, 2)
	add(p, err, KeymeshName+" (sequential)", 2, 2)
	ps = append(ps, NewDoerner(timeout), NewKryptology())
	return ps
}

// Unavailable returns a Protocol whose Keygen and Sign fail with an error
// wrapping ErrUnavailable and why: a row that is reported, never timed.
func Unavailable(name string, t, n int, why error) Protocol {
	return &unavailable{name: name, t: t, n: n, why: why}
}

type unavailable struct {
	name string
	t, n int
	why  error
}

func (u *unavailable) Name() string { return u.name }
func (u *unavailable) T() int       { return u.t }
func (u *unavailable) N() int       { return u.n }
func (u *unavailable) Note() string { return "not available: " + u.why.Error() }
func (u *unavailable) Keygen() (Key, error) {
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, u.why)
}
func (u *unavailable) Sign(Key, []byte) (*Signature, error) {
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, u.why)
}

// Result is what Measure found for one protocol.
type Result struct {
	Protocol Protocol
	Keygen   Timing
	Sign     Timing
	// BytesPerSig is the traffic of the last signature, all parties.
	BytesPerSig int
	// Err is why the measurement stopped, or nil.
	Err error
}

// Measure times keygens (at least 1) key generations of p, then signs
// signatures with the last key, each over a fresh random digest. Every
// signature is verified against the public key, outside the timed span; a
// signature that does not verify stops the measurement with an error.
func Measure(p Protocol, keygens, signs int) Result {
	res := Result{Protocol: p}
	var k Key
	var runs []time.Duration
	for range max(keygens, 1) {
		start := time.Now()
		key, err := p.Keygen()
		d := time.Since(start)
		if err != nil {
			res.Keygen = Summarize(runs)
			res.Err = err
			return res
		}
		runs = append(runs, d)
		k = key
	}
	res.Keygen = Summarize(runs)
	runs = nil
	digest := make([]byte, 32)
	for range signs {
		if _, err := rand.Read(digest); err != nil {
			res.Err = err
			break
		}
		start := time.Now()
		sig, err := p.Sign(k, digest)
		d := time.Since(start)
		if err != nil {
			res.Err = err
			break
		}
		if !sig.Verify(digest, k.PublicKey()) {
			res.Err = wrap(p, "sign", errors.New("signature does not verify"))
			break
		}
		runs = append(runs, d)
		res.BytesPerSig = sig.Bytes
	}
	res.Sign = Summarize(runs)
	return res
}
