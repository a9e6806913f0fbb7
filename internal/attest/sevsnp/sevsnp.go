// Package sevsnp verifies AMD SEV-SNP attestation reports on the client:
// that the AMD secure processor of a genuine AMD EPYC chip signed the
// report, and what it says about the guest (its launch MEASUREMENT, policy)
// and the 64 bytes of REPORT_DATA the guest chose. It does no I/O and never
// logs; the report's format and signature checks are those of
// github.com/google/go-sev-guest (abi, verify), called offline.
//
// Specification: AMD "SEV Secure Nested Paging Firmware ABI Specification"
// (pub. 56860), §7.3 "Attestation" and Table 23 ATTESTATION_REPORT
// (MEASUREMENT at 0x090, 48 bytes; REPORT_DATA at 0x050, 64 bytes; POLICY
// at 0x008; SIGNATURE at 0x2A0, ECDSA P-384 with SHA-384 over bytes
// 0x000–0x29F), §4.3 guest policy (bit 19 DEBUG); AMD "Versioned Chip
// Endorsement Key (VCEK) Certificate and KDS Interface Specification"
// (pub. 57230) for the chain ARK → ASK → VCEK.
//
// Evidence, as a keymesh quote carries it (EncodeEvidence): u16 length ‖
// the raw ATTESTATION_REPORT (1184 bytes) ‖ u16 length ‖ the VCEK
// certificate (DER) that the node fetched from AMD's KDS for its chip and
// TCB. The ARK and ASK are never taken from the evidence: they are pinned
// here (Roots), one pair per product line.
//
// What a caller then trusts: MEASUREMENT is the launch digest of the
// guest's initial memory (firmware, and with measured direct boot the
// kernel, initrd and command line that carry the node binary); REPORT_DATA
// is what the guest asked to be signed. A report whose guest policy allows
// debugging (the hypervisor may read and write guest memory) proves nothing
// about confidentiality: the Report says so (Debug) and package attest
// refuses it.
package sevsnp

import (
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-sev-guest/abi"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
)

// The pinned ASK and ARK of each product line, in the PEM form AMD's Key
// Distribution Service serves at https://kdsintf.amd.com/vcek/v1/<line>/cert_chain
// (copied from go-sev-guest v0.15.0 verify/trust; roots/README.md lists
// their fingerprints).
var (
	//go:embed roots/milan.pem
	milanPEM []byte
	//go:embed roots/genoa.pem
	genoaPEM []byte
	//go:embed roots/turin.pem
	turinPEM []byte
)

// TrustedRoots maps an SEV-SNP product line ("Milan", "Genoa", "Turin") to
// the ASK/ARK pairs trusted for it.
type TrustedRoots = map[string][]*trust.AMDRootCerts

// Roots returns the pinned AMD roots (a fresh copy each call).
func Roots() TrustedRoots {
	out := TrustedRoots{}
	for line, pem := range map[string][]byte{"Milan": milanPEM, "Genoa": genoaPEM, "Turin": turinPEM} {
		r := trust.AMDRootCertsProduct(line)
		if err := r.FromKDSCertBytes(pem); err != nil {
			panic("sevsnp: embedded " + line + " roots: " + err.Error())
		}
		out[line] = []*trust.AMDRootCerts{r}
	}
	return out
}

const maxCert = 4096

var (
	// ErrMalformed: the evidence does not decode.
	ErrMalformed = errors.New("sevsnp: malformed evidence")
	// ErrVerify: the report's signature or the VCEK's chain to the trusted
	// AMD roots does not verify at the verification time.
	ErrVerify = errors.New("sevsnp: report does not verify against the AMD roots")
)

// Report is a verified attestation report.
type Report struct {
	Version     uint32
	Measurement []byte // MEASUREMENT, 48 bytes
	ReportData  []byte // REPORT_DATA, 64 bytes
	Policy      abi.SnpPolicy
	Debug       bool // the guest policy allows debugging: the host can read guest memory
	VMPL        uint32
	ChipID      []byte
}

// MeasurementOf returns the 32-byte measurement keymesh pins for an SEV-SNP
// guest whose MEASUREMENT (48-byte launch digest) is launchDigest: its
// SHA-256 (docs/enclave.md, "Mapping to real TEEs").
func MeasurementOf(launchDigest []byte) [32]byte { return sha256.Sum256(launchDigest) }

// EncodeEvidence packs a raw report and its VCEK certificate (DER) as a
// keymesh quote's evidence.
func EncodeEvidence(report, vcek []byte) ([]byte, error) {
	if len(report) != abi.ReportSize || len(vcek) == 0 || len(vcek) > maxCert {
		return nil, fmt.Errorf("sevsnp: report of %d bytes (want %d) or certificate of %d bytes", len(report), abi.ReportSize, len(vcek))
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(report)))
	b = append(b, report...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(vcek)))
	return append(b, vcek...), nil
}

// DecodeEvidence unpacks EncodeEvidence's encoding strictly.
func DecodeEvidence(ev []byte) (report, vcek []byte, err error) {
	field := func() []byte {
		if err != nil || len(ev) < 2 {
			err = fmt.Errorf("%w: truncated", ErrMalformed)
			return nil
		}
		n := int(binary.BigEndian.Uint16(ev))
		if len(ev)-2 < n {
			err = fmt.Errorf("%w: field of %d bytes, %d left", ErrMalformed, n, len(ev)-2)
			return nil
		}
		f := ev[2 : 2+n]
		ev = ev[2+n:]
		return f
	}
	report, vcek = field(), field()
	switch {
	case err != nil:
		return nil, nil, err
	case len(ev) != 0:
		return nil, nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(ev))
	case len(report) != abi.ReportSize:
		return nil, nil, fmt.Errorf("%w: report of %d bytes, want %d", ErrMalformed, len(report), abi.ReportSize)
	case len(vcek) == 0 || len(vcek) > maxCert:
		return nil, nil, fmt.Errorf("%w: certificate of %d bytes", ErrMalformed, len(vcek))
	}
	return report, vcek, nil
}

// Verify checks evidence at time now against roots (Roots() for AMD's; a
// caller passes others only in tests): the VCEK chains to a pinned ASK and
// ARK of the report's product line, every certificate is valid at now, the
// VCEK's TCB and chip extensions match the report, and the report's ECDSA
// P-384 signature verifies under the VCEK. It never fetches anything
// (certificates, CRLs): revocation is not checked (docs/enclave.md).
func Verify(evidence []byte, roots TrustedRoots, now time.Time) (*Report, error) {
	if len(roots) == 0 {
		return nil, errors.New("sevsnp: no trusted roots given")
	}
	raw, vcek, err := DecodeEvidence(evidence)
	if err != nil {
		return nil, err
	}
	rep, err := abi.ReportToProto(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: report: %w", ErrMalformed, err)
	}
	att := &spb.Attestation{Report: rep, CertificateChain: &spb.CertificateChain{VcekCert: vcek}}
	if err := verify.SnpAttestation(att, &verify.Options{
		DisableCertFetching: true,
		Now:                 now,
		TrustedRoots:        roots,
	}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	pol, err := abi.ParseSnpPolicy(rep.GetPolicy())
	if err != nil {
		return nil, fmt.Errorf("%w: guest policy: %w", ErrMalformed, err)
	}
	return &Report{
		Version:     rep.GetVersion(),
		Measurement: rep.GetMeasurement(),
		ReportData:  rep.GetReportData(),
		Policy:      pol,
		Debug:       pol.Debug,
		VMPL:        rep.GetVmpl(),
		ChipID:      rep.GetChipId(),
	}, nil
}
