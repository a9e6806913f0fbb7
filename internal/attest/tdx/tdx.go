// Package tdx verifies Intel TDX quotes on the client: that a TDX quoting
// enclave, certified by Intel through the platform's PCK certificate,
// signed the TD's report, and what it says about the trust domain (MRTD,
// RTMR0–3, TD attributes) and the 64 bytes of REPORTDATA the TD chose. It
// does no I/O and never logs; the quote's format and signature checks are
// those of github.com/google/go-tdx-guest (abi, verify), called offline.
//
// Specification: Intel "TDX DCAP Quoting Library API" (quote format v4:
// §A.3 Quote header, TD Quote Body with MRTD, RTMR0–3 and REPORTDATA,
// §A.3.8 ECDSA quote signature data with the QE report and the PCK
// certificate chain, cert data type 6) and Intel "TDX Module ABI" (TDREPORT,
// TDATTRIBUTES bit 0 DEBUG). The chain is PCK → PCK Platform/Processor CA →
// Intel SGX Root CA; the root is pinned here (Roots), the chain in the quote
// is otherwise untrusted.
//
// Evidence, as a keymesh quote carries it: the raw quote (version 4) as the
// TD's quote generation service returned it, with its PCK chain inside, and
// nothing after its signed data.
//
// What a caller then trusts: MRTD is the digest of the TD's initial
// contents (the virtual firmware), RTMR0–3 what that firmware and the
// booted kernel measured (configuration, kernel, command line, initrd and
// the application); REPORTDATA is what the TD asked to be quoted. A TD
// whose attributes allow debugging (the host VMM can read its memory)
// proves nothing about confidentiality: Quote.Debug says so and package
// attest refuses it. Collateral (TCB info, QE identity, CRLs) needs Intel's
// PCS online and is not checked: the quote is not rated against Intel's
// current TCB levels, and a revoked PCK is not detected (docs/enclave.md).
package tdx

import (
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/verify"
)

// intelRootPEM is the Intel SGX Root CA, which also roots TDX PCK
// certificates: https://certificates.trustedservices.intel.com/Intel_SGX_Provisioning_Certification_RootCA.pem
// (copied from go-tdx-guest v0.3.1 verify/trusted_root.pem). Its SHA-256
// fingerprint is IntelRootSHA256. Valid 2018-05-21 to 2049-12-31.
//
//go:embed roots/intel_sgx_root_ca.pem
var intelRootPEM []byte

// IntelRootSHA256 is the SHA-256 fingerprint of the DER of the Intel SGX
// Root CA.
const IntelRootSHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"

// IntelRoot returns the pinned Intel SGX Root CA.
func IntelRoot() *x509.Certificate {
	b, _ := pem.Decode(intelRootPEM)
	if b == nil {
		panic("tdx: embedded Intel root is not PEM")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		panic("tdx: embedded Intel root: " + err.Error())
	}
	return c
}

// Roots returns a pool holding only the pinned Intel SGX Root CA.
func Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(IntelRoot())
	return p
}

const maxQuote = 1 << 14 // a v4 quote with its PEM chain is ~5 KiB

var (
	// ErrMalformed: the evidence is not a TDX quote v4.
	ErrMalformed = errors.New("tdx: malformed quote")
	// ErrVerify: the quote's signatures or its PCK chain to the trusted root
	// do not verify at the verification time.
	ErrVerify = errors.New("tdx: quote does not verify against the Intel root")
)

// Quote is a verified TDX quote's TD body.
type Quote struct {
	MRTD        []byte   // 48 bytes
	RTMRs       [][]byte // RTMR0–3, 48 bytes each
	ReportData  []byte   // REPORTDATA, 64 bytes
	TDAttribute []byte   // TDATTRIBUTES, 8 bytes
	Debug       bool     // TDATTRIBUTES.DEBUG: the host can read the TD's memory
}

// Measurement is the 32-byte measurement keymesh pins for a TD: SHA-256 of
// MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3 (docs/enclave.md, "Mapping to real
// TEEs"), so it covers the firmware, kernel, command line and application.
func (q *Quote) Measurement() [32]byte { return MeasurementOf(q.MRTD, q.RTMRs) }

// MeasurementOf returns keymesh's measurement for a TD's MRTD and RTMR0–3.
func MeasurementOf(mrtd []byte, rtmrs [][]byte) [32]byte {
	h := sha256.New()
	h.Write(mrtd)
	for _, r := range rtmrs {
		h.Write(r)
	}
	var m [32]byte
	h.Sum(m[:0])
	return m
}

// Parse decodes a quote v4 without verifying it. Never trust its fields;
// use Verify.
func Parse(raw []byte) (*Quote, error) {
	q, err := parse(raw)
	if err != nil {
		return nil, err
	}
	return body(q)
}

func parse(raw []byte) (*pb.QuoteV4, error) {
	if len(raw) > maxQuote {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(raw), maxQuote)
	}
	a, err := abi.QuoteToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	q, ok := a.(*pb.QuoteV4)
	if !ok {
		return nil, fmt.Errorf("%w: not a quote v4", ErrMalformed)
	}
	if err := abi.CheckQuoteV4(q); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// Bytes after the signed data are covered by no signature: refuse
	// them rather than carry them along.
	if len(q.GetExtraBytes()) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the quote's signed data", ErrMalformed, len(q.GetExtraBytes()))
	}
	return q, nil
}

func body(q *pb.QuoteV4) (*Quote, error) {
	b := q.GetTdQuoteBody()
	rtmrs := b.GetRtmrs()
	if len(b.GetMrTd()) != 48 || len(rtmrs) != 4 || len(b.GetReportData()) != 64 || len(b.GetTdAttributes()) != 8 {
		return nil, fmt.Errorf("%w: TD quote body field sizes", ErrMalformed)
	}
	for _, r := range rtmrs {
		if len(r) != 48 {
			return nil, fmt.Errorf("%w: RTMR of %d bytes", ErrMalformed, len(r))
		}
	}
	attr := b.GetTdAttributes()
	return &Quote{
		MRTD:        b.GetMrTd(),
		RTMRs:       rtmrs,
		ReportData:  b.GetReportData(),
		TDAttribute: attr,
		Debug:       attr[0]&1 != 0, // TDATTRIBUTES bit 0, little-endian
	}, nil
}

// Verify checks a raw quote at time now against roots (Roots() for Intel's;
// a caller passes another pool only in tests): the PCK certificate chains
// through the quote's intermediate to one of roots with every certificate
// valid at now, the PCK key signed the quoting enclave's report, that report
// binds the attestation key, and the attestation key signed the header and
// TD quote body. It never fetches collateral.
func Verify(raw []byte, roots *x509.CertPool, now time.Time) (*Quote, error) {
	if roots == nil {
		return nil, errors.New("tdx: no trusted roots given")
	}
	q, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if err := verify.TdxQuote(q, &verify.Options{Now: now, TrustedRoots: roots}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	return body(q)
}
