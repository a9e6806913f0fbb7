package attest

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	sevabi "github.com/google/go-sev-guest/abi"
	sevtest "github.com/google/go-sev-guest/testing"
	sevtrust "github.com/google/go-sev-guest/verify/trust"
	tdxabi "github.com/google/go-tdx-guest/abi"
	tdxpb "github.com/google/go-tdx-guest/proto/tdx"

	"github.com/keymesh/keymesh/internal/attest/nitro"
	"github.com/keymesh/keymesh/internal/attest/nitro/nitrotest"
	"github.com/keymesh/keymesh/internal/attest/sevsnp"
	"github.com/keymesh/keymesh/internal/attest/tdx"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
)

// hwKeys are request keys a client would seal to (the private half is not
// needed: these tests stop at verification).
func hwKeys(t *testing.T) (Keys, []byte) {
	t.Helper()
	sk, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := Keys{HPKEKEM: envelope.KEMX25519, HPKE: sk.PublicKey().Bytes(), Identity: bytes.Repeat([]byte{1}, 32)}
	kb, err := k.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return k, kb
}

// nitroDoc makes a Nitro attestation the way a node on Nitro makes one —
// NSM Attestation with user_data = the report data binding keys and
// freshness — but signed by the generated chain ca instead of AWS's.
func nitroDoc(t *testing.T, ca *nitrotest.CA, pcr0 []byte, at time.Time) (*Document, enclave.Measurement) {
	t.Helper()
	_, kb := hwKeys(t)
	f := Freshness{Issued: at, Expires: at.Add(DefaultValidity)}
	fb, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rd := ReportData(kb, fb)
	ev, err := ca.Sign(pcr0, rd[:], at)
	if err != nil {
		t.Fatal(err)
	}
	m := enclave.Measurement(nitro.MeasurementOf(pcr0))
	q := &enclave.Quote{Platform: enclave.PlatformNitro, Measurement: m, ReportData: rd, Evidence: ev}
	qb, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Document{Keys: kb, Fresh: fb, Quote: qb}, m
}

func requote(t *testing.T, d *Document, edit func(*enclave.Quote)) *Document {
	t.Helper()
	q := mustQuote(t, d)
	edit(q)
	qb, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Document{Keys: d.Keys, Fresh: d.Fresh, Quote: qb}
}

// TestNitroEndToEnd: a Nitro document binding the node's keys verifies
// under the chain that signed it, and is refused under the pinned AWS root
// (an operator's own chain), with another measurement pinned, with the
// quote's unsigned fields rewritten, or marked simulated.
func TestNitroEndToEnd(t *testing.T) {
	now := time.Now()
	ca, err := nitrotest.NewCA(now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pcr0 := bytes.Repeat([]byte{0xab}, 48)
	doc, m := nitroDoc(t, ca, pcr0, now)
	pol := Policy{Measurements: []enclave.Measurement{m}, NitroRoots: ca.Roots(), MinKEM: envelope.KEMX25519, Now: now}
	res, err := Verify(doc, pol)
	if err != nil {
		t.Fatal(err)
	}
	if res.Platform != enclave.PlatformNitro || res.Simulated || res.Measurement != m || len(res.Warnings) != 0 {
		t.Fatalf("result %+v", res)
	}

	aws := pol
	aws.NitroRoots = nil // the client's default: the pinned AWS root
	if _, err := Verify(doc, aws); !errors.Is(err, ErrQuote) || !errors.Is(err, nitro.ErrChain) {
		t.Fatalf("self-made chain under the AWS root: err %v, want ErrQuote (chain)", err)
	}

	other := pol
	other.Measurements = []enclave.Measurement{{1}}
	var me *MeasurementError
	if _, err := Verify(doc, other); !errors.As(err, &me) {
		t.Fatalf("other pinned measurement: err %v, want MeasurementError", err)
	}

	// An attacker rewrites the quote's unsigned measurement to the pinned
	// one while the evidence measures its own image.
	evil, _ := nitroDoc(t, ca, bytes.Repeat([]byte{0xee}, 48), now)
	evil = requote(t, evil, func(q *enclave.Quote) { q.Measurement = m })
	if _, err := Verify(evil, pol); !errors.Is(err, ErrQuote) {
		t.Fatalf("rewritten measurement: err %v, want ErrQuote", err)
	}

	// An on-path attacker swaps in its own request key: new keys, new
	// report data in the quote, but the signed user_data is the node's.
	_, akb := hwKeys(t)
	swapped := &Document{Keys: akb, Fresh: doc.Fresh, Quote: doc.Quote}
	if _, err := Verify(swapped, pol); !errors.Is(err, ErrKeysNotBound) {
		t.Fatalf("swapped keys: err %v, want ErrKeysNotBound", err)
	}
	swapped = requote(t, swapped, func(q *enclave.Quote) { q.ReportData = ReportData(akb, doc.Fresh) })
	if _, err := Verify(swapped, pol); !errors.Is(err, ErrKeysNotBound) {
		t.Fatalf("swapped keys and report data: err %v, want ErrKeysNotBound", err)
	}

	sim := requote(t, doc, func(q *enclave.Quote) { q.Simulated = true })
	simPol := pol
	simPol.AllowSimulated = true
	if _, err := Verify(sim, simPol); !errors.Is(err, ErrQuote) {
		t.Fatalf("nitro quote marked simulated: err %v, want ErrQuote", err)
	}

	late := pol
	late.Now = ca.NotAfter.Add(time.Second)
	late.MaxAge = 48 * time.Hour
	if _, err := Verify(doc, late); !errors.Is(err, ErrQuote) {
		t.Fatalf("after the chain expired: err %v, want ErrQuote", err)
	}

	debug, dm := nitroDoc(t, ca, make([]byte, 48), now)
	dbg := pol
	dbg.Measurements = []enclave.Measurement{dm}
	if _, err := Verify(debug, dbg); !errors.Is(err, ErrDebug) {
		t.Fatalf("debug-mode enclave: err %v, want ErrDebug", err)
	}
}

// wrapGenuine puts genuine vendor evidence in a keymesh quote with the
// measurement and report data it carries, and keys the evidence cannot
// bind (it was made for another application).
func wrapGenuine(t *testing.T, platform string, m enclave.Measurement, rd []byte, ev []byte, at time.Time) *Document {
	t.Helper()
	_, kb := hwKeys(t)
	f := Freshness{Issued: at, Expires: at.Add(DefaultValidity)}
	fb, _ := f.MarshalBinary()
	q := &enclave.Quote{Platform: platform, Measurement: m, Evidence: ev}
	copy(q.ReportData[:], rd)
	qb, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Document{Keys: kb, Fresh: fb, Quote: qb}
}

// TestGenuineEvidenceThroughVerify runs each genuine vendor sample through
// attest.Verify as a client would meet it: the vendor check passes with the
// pinned roots, and the document is still refused, because the evidence
// binds another application's data, not these keys (Nitro, TDX), or the
// guest allows debugging (SEV-SNP). A flipped byte, a time after the chain
// expired and another pinned measurement are refused first.
func TestGenuineEvidenceThroughVerify(t *testing.T) {
	read := func(parts ...string) []byte {
		b, err := os.ReadFile(filepath.Join(parts...))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type sample struct {
		platform string
		ev       []byte
		at       time.Time
		expired  time.Time
		want     error
	}
	var samples []sample

	nitroRaw := read("nitro", "testdata", "cape-js-2022-09-15.cose")
	samples = append(samples, sample{enclave.PlatformNitro, nitroRaw,
		time.Date(2022, 9, 15, 17, 44, 24, 0, time.UTC), time.Date(2022, 9, 15, 20, 43, 28, 0, time.UTC), ErrKeysNotBound})

	snpEv, err := sevsnp.EncodeEvidence(read("sevsnp", "testdata", "go-sev-guest-attestation.bin"), read("sevsnp", "testdata", "go-sev-guest-vcek.der"))
	if err != nil {
		t.Fatal(err)
	}
	samples = append(samples, sample{enclave.PlatformSEVSNP, snpEv,
		time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2029, 9, 25, 0, 0, 0, 0, time.UTC), ErrDebug})

	tdxRaw := read("tdx", "testdata", "go-tdx-guest-tdx_prod_quote_SPR_E4.dat")
	tdxRaw = tdxRaw[:len(tdxRaw)-39] // the published file's unsigned trailer (tdx/testdata/README.md)
	samples = append(samples, sample{enclave.PlatformTDX, tdxRaw,
		time.Date(2023, 7, 1, 1, 0, 0, 0, time.UTC), time.Date(2029, 9, 21, 0, 0, 0, 0, time.UTC), ErrKeysNotBound})

	for _, s := range samples {
		t.Run(s.platform, func(t *testing.T) {
			var m enclave.Measurement
			var rd []byte
			switch s.platform {
			case enclave.PlatformNitro:
				d, err := nitro.Verify(s.ev, nitro.Roots(), s.at)
				if err != nil {
					t.Fatal(err)
				}
				m, rd = d.Measurement(), d.UserData
			case enclave.PlatformSEVSNP:
				r, err := sevsnp.Verify(s.ev, sevsnp.Roots(), s.at)
				if err != nil {
					t.Fatal(err)
				}
				m, rd = sevsnp.MeasurementOf(r.Measurement), r.ReportData
			case enclave.PlatformTDX:
				q, err := tdx.Verify(s.ev, tdx.Roots(), s.at)
				if err != nil {
					t.Fatal(err)
				}
				m, rd = q.Measurement(), q.ReportData
			}
			// Cape's user_data is a JSON object of 250 bytes: it cannot be
			// 64 bytes of keymesh report data, so the binding fails before
			// the measurement pin is looked at.
			fits := len(rd) == 64
			rd = rd[:min(len(rd), 64)]
			doc := wrapGenuine(t, s.platform, m, rd, s.ev, s.at)
			pol := Policy{Measurements: []enclave.Measurement{m}, Now: s.at, MinKEM: envelope.KEMX25519}
			if _, err := Verify(doc, pol); !errors.Is(err, s.want) {
				t.Fatalf("genuine %s evidence: err %v, want %v", s.platform, err, s.want)
			}

			flipped := bytes.Clone(s.ev)
			flipped[len(flipped)/3] ^= 1
			if _, err := Verify(wrapGenuine(t, s.platform, m, rd, flipped, s.at), pol); !errors.Is(err, ErrQuote) {
				t.Fatalf("flipped evidence: err %v, want ErrQuote", err)
			}
			late := pol
			late.Now = s.expired
			if _, err := Verify(doc, late); !errors.Is(err, ErrQuote) {
				t.Fatalf("after the chain expired: err %v, want ErrQuote", err)
			}
			if s.want != ErrDebug && fits {
				other := pol
				other.Measurements = []enclave.Measurement{{2}}
				var me *MeasurementError
				if _, err := Verify(doc, other); !errors.As(err, &me) {
					t.Fatalf("another pinned measurement: err %v, want MeasurementError", err)
				}
			}
		})
	}
}

// snpDoc makes an SEV-SNP attestation the way a node on SNP makes one —
// REPORT_DATA = the report data binding keys and freshness — but signed by
// a generated Milan-shaped ARK → ASK → VCEK chain (go-sev-guest's test-only
// signer) instead of AMD's.
func snpDoc(t *testing.T, signer *sevtest.AmdSigner, launch []byte, debug bool, at time.Time) (*Document, enclave.Measurement) {
	t.Helper()
	_, kb := hwKeys(t)
	f := Freshness{Issued: at, Expires: at.Add(DefaultValidity)}
	fb, _ := f.MarshalBinary()
	rd := ReportData(kb, fb)
	raw := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: rd[:]})
	report := raw[:sevabi.ReportSize]
	binary.LittleEndian.PutUint64(report[0x08:], sevabi.SnpPolicyToBytes(sevabi.SnpPolicy{SMT: true, Debug: debug}))
	copy(report[0x90:0xc0], launch)
	binary.LittleEndian.PutUint64(report[0x180:], uint64(signer.TCB)) // REPORTED_TCB
	copy(report[0x1a0:0x1e0], signer.HWID[:])                         // CHIP_ID
	r, s, err := signer.Sign(sevabi.SignedComponent(report))
	if err != nil {
		t.Fatal(err)
	}
	if err := sevabi.SetSignature(r, s, report); err != nil {
		t.Fatal(err)
	}
	ev, err := sevsnp.EncodeEvidence(report, signer.Vcek.Raw)
	if err != nil {
		t.Fatal(err)
	}
	m := enclave.Measurement(sevsnp.MeasurementOf(launch))
	q := &enclave.Quote{Platform: enclave.PlatformSEVSNP, Measurement: m, ReportData: rd, Evidence: ev}
	qb, err := q.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Document{Keys: kb, Fresh: fb, Quote: qb}, m
}

// TestSEVSNPEndToEnd: an SNP report binding the node's keys verifies under
// the chain that signed it, and is refused under the pinned AMD roots (a
// self-made chain), with a debug guest policy, or with swapped keys.
func TestSEVSNPEndToEnd(t *testing.T) {
	now := time.Now()
	signer, err := sevtest.DefaultTestOnlyCertChain("Milan-B1", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	generated := sevsnp.TrustedRoots{"Milan": {{ProductLine: "Milan", ProductCerts: &sevtrust.ProductCerts{Ask: signer.Ask, Ark: signer.Ark}}}}
	launch := bytes.Repeat([]byte{0x42}, 48)
	doc, m := snpDoc(t, signer, launch, false, now)
	pol := Policy{Measurements: []enclave.Measurement{m}, SEVSNPRoots: generated, MinKEM: envelope.KEMX25519, Now: now}
	res, err := Verify(doc, pol)
	if err != nil {
		t.Fatal(err)
	}
	if res.Platform != enclave.PlatformSEVSNP || res.Simulated || res.Measurement != m {
		t.Fatalf("result %+v", res)
	}

	amd := pol
	amd.SEVSNPRoots = nil // the client's default: AMD's pinned ARK and ASK
	if _, err := Verify(doc, amd); !errors.Is(err, ErrQuote) || !errors.Is(err, sevsnp.ErrVerify) {
		t.Fatalf("self-made chain under AMD's roots: err %v, want ErrQuote", err)
	}

	debug, _ := snpDoc(t, signer, launch, true, now)
	if _, err := Verify(debug, pol); !errors.Is(err, ErrDebug) {
		t.Fatalf("debug guest: err %v, want ErrDebug", err)
	}

	_, akb := hwKeys(t)
	swapped := requote(t, &Document{Keys: akb, Fresh: doc.Fresh, Quote: doc.Quote},
		func(q *enclave.Quote) { q.ReportData = ReportData(akb, doc.Fresh) })
	if _, err := Verify(swapped, pol); !errors.Is(err, ErrKeysNotBound) {
		t.Fatalf("swapped keys and report data: err %v, want ErrKeysNotBound", err)
	}
}

// tdxCA is a generated chain shaped like Intel's (the CNs go-tdx-guest
// requires): root, PCK Platform CA, and a PCK certificate carrying the
// genuine PCK certificate's SGX extensions (FMSPC, TCB), all P-256.
type tdxCA struct {
	root, inter, pck *x509.Certificate
	pckKey           *ecdsa.PrivateKey
}

func newTDXCA(t *testing.T, genuinePCK *x509.Certificate, notBefore time.Time) *tdxCA {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, interKey, pckKey := key(), key(), key()
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"Intel Corporation"}, Locality: []string{"Santa Clara"}, Province: []string{"CA"}, Country: []string{"US"}}
	}
	mk := func(serial int64, cn string, ca bool, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey, extra []pkix.Extension) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: name(cn), NotBefore: notBefore, NotAfter: notBefore.Add(24 * time.Hour),
			IsCA: ca, BasicConstraintsValid: true, SignatureAlgorithm: x509.ECDSAWithSHA256, ExtraExtensions: extra,
		}
		if ca {
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			// The six extensions of a PCK certificate: these four, the
			// authority key id, and the SGX extension.
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature
			tmpl.CRLDistributionPoints = genuinePCK.CRLDistributionPoints
			tmpl.SubjectKeyId = bytes.Repeat([]byte{7}, 20)
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var sgx []pkix.Extension
	for _, e := range genuinePCK.Extensions {
		if e.Id.String() == "1.2.840.113741.1.13.1" { // Intel SGX extensions (FMSPC, TCB, PPID…)
			sgx = append(sgx, e)
		}
	}
	if len(sgx) != 1 {
		t.Fatal("genuine PCK certificate without its SGX extension")
	}
	root := mk(1, "Intel SGX Root CA", true, nil, &rootKey.PublicKey, rootKey, nil)
	inter := mk(2, "Intel SGX PCK Platform CA", true, root, &interKey.PublicKey, rootKey, nil)
	pck := mk(3, "Intel SGX PCK Certificate", false, inter, &pckKey.PublicKey, interKey, sgx)
	return &tdxCA{root: root, inter: inter, pck: pck, pckKey: pckKey}
}

func (ca *tdxCA) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.root)
	return p
}

// p256Sign returns r ‖ s (32 bytes each) over SHA-256(msg), as TDX quotes
// carry ECDSA signatures.
func p256Sign(t *testing.T, k *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out
}

// tdxDoc makes a TDX attestation the way a node in a TD makes one —
// REPORTDATA = the report data binding keys and freshness — with the
// genuine quote's header and TD body (so its MRTD and RTMRs) but a new
// attestation key, QE report signature and PCK chain from ca: the quoting
// enclave and PCK key are generated, not Intel's.
func tdxDoc(t *testing.T, genuine []byte, ca *tdxCA, debug bool, at time.Time) (*Document, enclave.Measurement) {
	t.Helper()
	_, kb := hwKeys(t)
	f := Freshness{Issued: at, Expires: at.Add(DefaultValidity)}
	fb, _ := f.MarshalBinary()
	rd := ReportData(kb, fb)
	a, err := tdxabi.QuoteToProto(genuine)
	if err != nil {
		t.Fatal(err)
	}
	q := a.(*tdxpb.QuoteV4)
	body := q.GetTdQuoteBody()
	body.ReportData = rd[:]
	if debug {
		body.TdAttributes[0] |= 1
	}
	ak, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	akBytes := make([]byte, 64)
	ak.X.FillBytes(akBytes[:32])
	ak.Y.FillBytes(akBytes[32:])
	sd := q.GetSignedData()
	sd.EcdsaAttestationKey = akBytes
	qe := sd.GetCertificationData().GetQeReportCertificationData()
	binding := sha256.Sum256(append(bytes.Clone(akBytes), qe.GetQeAuthData().GetData()...))
	qe.QeReport.ReportData = append(binding[:], make([]byte, 32)...)
	qeReport, err := tdxabi.EnclaveReportToAbiBytes(qe.GetQeReport())
	if err != nil {
		t.Fatal(err)
	}
	qe.QeReportSignature = p256Sign(t, ca.pckKey, qeReport)
	var chain []byte
	for _, c := range []*x509.Certificate{ca.pck, ca.inter, ca.root} {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	old := qe.GetPckCertificateChainData().GetSize()
	qe.PckCertificateChainData.PckCertChain = chain
	qe.PckCertificateChainData.Size = uint32(len(chain))
	sd.CertificationData.Size += uint32(len(chain)) - old
	q.SignedDataSize += uint32(len(chain)) - old
	header, err := tdxabi.HeaderToAbiBytes(q.GetHeader())
	if err != nil {
		t.Fatal(err)
	}
	bodyBytes, err := tdxabi.TdQuoteBodyToAbiBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	sd.Signature = p256Sign(t, ak, append(header, bodyBytes...))
	ev, err := tdxabi.QuoteToAbiBytes(q)
	if err != nil {
		t.Fatal(err)
	}
	m := enclave.Measurement(tdx.MeasurementOf(body.GetMrTd(), body.GetRtmrs()))
	qt := &enclave.Quote{Platform: enclave.PlatformTDX, Measurement: m, ReportData: rd, Evidence: ev}
	qb, err := qt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Document{Keys: kb, Fresh: fb, Quote: qb}, m
}

// TestTDXEndToEnd: a TDX quote binding the node's keys verifies under the
// chain that certified its quoting enclave, and is refused under the pinned
// Intel root (a self-made chain named like Intel's), with a debug TD, with
// swapped keys, or after the chain expired.
func TestTDXEndToEnd(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("tdx", "testdata", "go-tdx-guest-tdx_prod_quote_SPR_E4.dat"))
	if err != nil {
		t.Fatal(err)
	}
	raw = raw[:len(raw)-39] // the published file's unsigned trailer (tdx/testdata/README.md)
	block, _ := pem.Decode(raw[bytes.Index(raw, []byte("-----BEGIN CERTIFICATE-----")):])
	genuinePCK, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := newTDXCA(t, genuinePCK, now.Add(-time.Hour))
	doc, m := tdxDoc(t, raw, ca, false, now)
	pol := Policy{Measurements: []enclave.Measurement{m}, TDXRoots: ca.roots(), MinKEM: envelope.KEMX25519, Now: now}
	res, err := Verify(doc, pol)
	if err != nil {
		t.Fatal(err)
	}
	if res.Platform != enclave.PlatformTDX || res.Simulated || res.Measurement != m {
		t.Fatalf("result %+v", res)
	}

	intel := pol
	intel.TDXRoots = nil // the client's default: the pinned Intel root
	if _, err := Verify(doc, intel); !errors.Is(err, ErrQuote) || !errors.Is(err, tdx.ErrVerify) {
		t.Fatalf("self-made chain under Intel's root: err %v, want ErrQuote", err)
	}

	debug, dm := tdxDoc(t, raw, ca, true, now)
	dbg := pol
	dbg.Measurements = []enclave.Measurement{dm}
	if _, err := Verify(debug, dbg); !errors.Is(err, ErrDebug) {
		t.Fatalf("debug TD: err %v, want ErrDebug", err)
	}

	_, akb := hwKeys(t)
	swapped := requote(t, &Document{Keys: akb, Fresh: doc.Fresh, Quote: doc.Quote},
		func(q *enclave.Quote) { q.ReportData = ReportData(akb, doc.Fresh) })
	if _, err := Verify(swapped, pol); !errors.Is(err, ErrKeysNotBound) {
		t.Fatalf("swapped keys and report data: err %v, want ErrKeysNotBound", err)
	}

	late := pol
	late.Now = now.Add(24 * time.Hour)
	late.MaxAge = 48 * time.Hour
	if _, err := Verify(doc, late); !errors.Is(err, ErrQuote) {
		t.Fatalf("after the chain expired: err %v, want ErrQuote", err)
	}
}
