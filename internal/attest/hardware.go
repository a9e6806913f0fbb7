package attest

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/keymesh/keymesh/internal/attest/nitro"
	"github.com/keymesh/keymesh/internal/attest/sevsnp"
	"github.com/keymesh/keymesh/internal/attest/tdx"
	"github.com/keymesh/keymesh/internal/enclave"
)

// ErrDebug: the hardware evidence verifies, but the enclave runs in a debug
// mode in which the host can read its memory (a Nitro enclave in debug
// mode, an SEV-SNP guest whose policy allows debugging, a TD with
// TDATTRIBUTES.DEBUG), so it protects nothing.
var ErrDebug = errors.New("attest: the enclave runs in debug mode, so its host can read its memory")

// hardwareEvidence is what a vendor verifier vouches for: the measurement
// keymesh pins, the 64 bytes the enclave had covered, and the debug mode.
type hardwareEvidence struct {
	measurement enclave.Measurement
	reportData  []byte
	debug       bool
}

// verifyHardware checks q.Evidence with the vendor verifier of q.Platform
// against the policy's roots (the pinned vendor roots unless a test set
// others) at p.Now, then that the quote's unsigned Measurement and
// ReportData fields are the ones the evidence carries: the binding value
// is Nitro's user_data, SEV-SNP's REPORT_DATA, TDX's REPORTDATA.
func verifyHardware(q *enclave.Quote, p Policy) error {
	if q.Simulated {
		return fmt.Errorf("%w: a %s quote marked simulated", ErrQuote, q.Platform)
	}
	now := p.Now
	if now.IsZero() {
		now = time.Now()
	}
	ev, err := hardware(q, p, now)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrQuote, err)
	}
	if ev.debug {
		return ErrDebug
	}
	if !ev.measurement.Equal(q.Measurement) {
		return fmt.Errorf("%w: the quote claims measurement %s, its %s evidence measures %s", ErrQuote, q.Measurement, q.Platform, ev.measurement)
	}
	if !bytes.Equal(ev.reportData, q.ReportData[:]) {
		return fmt.Errorf("%w: the %s evidence covers other report data than the quote's", ErrKeysNotBound, q.Platform)
	}
	return nil
}

func hardware(q *enclave.Quote, p Policy, now time.Time) (*hardwareEvidence, error) {
	switch q.Platform {
	case enclave.PlatformNitro:
		roots := p.NitroRoots
		if roots == nil {
			roots = nitro.Roots()
		}
		d, err := nitro.Verify(q.Evidence, roots, now)
		if errors.Is(err, nitro.ErrDebug) {
			return &hardwareEvidence{debug: true}, nil
		}
		if err != nil {
			return nil, err
		}
		return &hardwareEvidence{measurement: d.Measurement(), reportData: d.UserData}, nil
	case enclave.PlatformSEVSNP:
		roots := p.SEVSNPRoots
		if roots == nil {
			roots = sevsnp.Roots()
		}
		r, err := sevsnp.Verify(q.Evidence, roots, now)
		if err != nil {
			return nil, err
		}
		return &hardwareEvidence{measurement: sevsnp.MeasurementOf(r.Measurement), reportData: r.ReportData, debug: r.Debug}, nil
	case enclave.PlatformTDX:
		roots := p.TDXRoots
		if roots == nil {
			roots = tdx.Roots()
		}
		t, err := tdx.Verify(q.Evidence, roots, now)
		if err != nil {
			return nil, err
		}
		return &hardwareEvidence{measurement: t.Measurement(), reportData: t.ReportData, debug: t.Debug}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedPlatform, q.Platform)
}
