package enclave

import (
	"bytes"
	"fmt"

	"github.com/keymesh/keymesh/internal/codec"
)

// Platform names known to the formats here.
const (
	PlatformSim    = "sim"
	PlatformSEVSNP = "sev-snp"
	PlatformTDX    = "tdx"
	PlatformSGX    = "sgx"
	PlatformNitro  = "nitro"
)

const (
	quoteMagic      = "KMQUOTE\x01"
	maxPlatformLen  = 32
	maxEvidenceLen  = 1 << 16 // a Nitro COSE_Sign1 document with its chain is ~5 KiB
	flagSimulated   = 1
	knownQuoteFlags = flagSimulated
)

// Quote is an attestation document: the platform says that code with
// Measurement runs in an enclave and chose ReportData. Evidence is the
// platform's proof in its own format (sim: platform public key and Ed25519
// signature; SEV-SNP: the signed ATTESTATION_REPORT and VCEK chain; Nitro: the
// COSE_Sign1 document). Verify a Quote with package attest before trusting
// any field.
type Quote struct {
	Platform    string
	Simulated   bool // the platform says it is a simulation; clients must opt in
	Measurement Measurement
	ReportData  ReportData
	Evidence    []byte
}

// SignedBytes returns the encoding of every field but Evidence: what a
// platform that signs quotes itself (the sim) signs.
func (q *Quote) SignedBytes() []byte {
	b := make([]byte, 0, 128+len(q.Platform))
	b = append(b, quoteMagic...)
	b = append(b, byte(len(q.Platform)))
	b = append(b, q.Platform...)
	var flags byte
	if q.Simulated {
		flags |= flagSimulated
	}
	b = append(b, flags)
	b = append(b, q.Measurement[:]...)
	b = append(b, q.ReportData[:]...)
	return b
}

// MarshalBinary encodes q canonically: magic, platform (1-byte length),
// flags, measurement, report data, evidence (4-byte length).
func (q *Quote) MarshalBinary() ([]byte, error) {
	return marshalTail("quote", q.Platform, q.SignedBytes(), "evidence", q.Evidence, maxEvidenceLen)
}

// UnmarshalBinary decodes a quote strictly: unknown flags, an empty or long
// platform name and trailing bytes are errors wrapping ErrMalformed.
func (q *Quote) UnmarshalBinary(data []byte) error {
	r := codec.NewReader(data, ErrMalformed)
	r.Magic(quoteMagic, "a quote")
	var out Quote
	out.Platform = readPlatform(&r)
	flags := r.U8("flags")
	if r.Err() == nil && flags&^knownQuoteFlags != 0 {
		r.Fail("unknown flags %#x", flags)
	}
	out.Simulated = flags&flagSimulated != 0
	copy(out.Measurement[:], r.Bytes(len(out.Measurement), "measurement"))
	copy(out.ReportData[:], r.Bytes(len(out.ReportData), "report data"))
	out.Evidence = bytes.Clone(r.Var(maxEvidenceLen, "evidence"))
	if err := r.Done(); err != nil {
		return fmt.Errorf("enclave: quote: %w", err)
	}
	*q = out
	return nil
}
