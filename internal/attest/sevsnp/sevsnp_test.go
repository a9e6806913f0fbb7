package sevsnp_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	test "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/keymesh/keymesh/internal/attest/sevsnp"
)

// The genuine report (testdata/README.md) and its VCEK, valid 2022-09-24
// to 2029-09-24 under AMD's Milan ASK and ARK.
var (
	genuineTime        = time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	genuineMeasurement = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
)

func genuine(t testing.TB) (report, vcek, evidence []byte) {
	t.Helper()
	report, err := os.ReadFile(filepath.Join("testdata", "go-sev-guest-attestation.bin"))
	if err != nil {
		t.Fatal(err)
	}
	vcek, err = os.ReadFile(filepath.Join("testdata", "go-sev-guest-vcek.der"))
	if err != nil {
		t.Fatal(err)
	}
	evidence, err = sevsnp.EncodeEvidence(report, vcek)
	if err != nil {
		t.Fatal(err)
	}
	return report, vcek, evidence
}

func TestGenuineReportVerifies(t *testing.T) {
	_, _, ev := genuine(t)
	r, err := sevsnp.Verify(ev, sevsnp.Roots(), genuineTime)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(r.Measurement); got != genuineMeasurement {
		t.Fatalf("MEASUREMENT %s, want %s", got, genuineMeasurement)
	}
	want := make([]byte, 64)
	copy(want, []byte{1, 2, 3, 4, 5})
	if !bytes.Equal(r.ReportData, want) {
		t.Fatalf("REPORT_DATA %x", r.ReportData)
	}
	// The sample's guest policy (0x0b0000) allows debugging: Verify
	// reports it and package attest refuses such a report.
	if !r.Debug || r.Version != 2 || r.VMPL != 0 {
		t.Fatalf("report %+v", r)
	}
}

// TestFlippedByteRefused flips one bit in the signed body of the report
// (MEASUREMENT, REPORT_DATA, policy), in its signature, and in the VCEK
// certificate (its key and its signature): each is refused.
func TestFlippedByteRefused(t *testing.T) {
	report, vcek, _ := genuine(t)
	cases := map[string]func() ([]byte, []byte){}
	for _, at := range []int{0x08, 0x50, 0x60, 0x90, 0xbf, 0x1a0, 0x29f, 0x2a0, 0x2e0, 0x2f0, 0x330} {
		cases["report@"+hex.EncodeToString([]byte{byte(at >> 8), byte(at)})] = func() ([]byte, []byte) {
			r := bytes.Clone(report)
			r[at] ^= 1
			return r, vcek
		}
	}
	for _, at := range []int{200, 300, len(vcek) / 2, len(vcek) - 10} {
		cases["vcek@"+hex.EncodeToString([]byte{byte(at >> 8), byte(at)})] = func() ([]byte, []byte) {
			c := bytes.Clone(vcek)
			c[at] ^= 1
			return report, c
		}
	}
	for name, mk := range cases {
		r, c := mk()
		ev, err := sevsnp.EncodeEvidence(r, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sevsnp.Verify(ev, sevsnp.Roots(), genuineTime); err == nil {
			t.Errorf("%s: flipped evidence verifies", name)
		}
	}
}

func TestExpiredChainRefused(t *testing.T) {
	_, _, ev := genuine(t)
	for _, at := range []time.Time{
		time.Date(2029, 9, 25, 0, 0, 0, 0, time.UTC), // the VCEK expired on 2029-09-24
		time.Date(2022, 9, 23, 0, 0, 0, 0, time.UTC), // before it was issued
	} {
		if _, err := sevsnp.Verify(ev, sevsnp.Roots(), at); !errors.Is(err, sevsnp.ErrVerify) {
			t.Fatalf("at %s: err %v, want ErrVerify", at, err)
		}
	}
}

// TestWrongRootRefused: the genuine report under another (generated) Milan
// ARK and ASK is refused, and so is a report whose VCEK is for another
// product line than the roots given.
func TestWrongRootRefused(t *testing.T) {
	_, _, ev := genuine(t)
	signer, err := test.DefaultTestOnlyCertChain("Milan", genuineTime.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	other := trust.AMDRootCertsProduct("Milan")
	other.ProductCerts = &trust.ProductCerts{Ask: signer.Ask, Ark: signer.Ark}
	if _, err := sevsnp.Verify(ev, sevsnp.TrustedRoots{"Milan": {other}}, genuineTime); !errors.Is(err, sevsnp.ErrVerify) {
		t.Fatalf("genuine report under a generated root: err %v, want ErrVerify", err)
	}
	genoaOnly := sevsnp.Roots()
	delete(genoaOnly, "Milan")
	if _, err := sevsnp.Verify(ev, genoaOnly, genuineTime); !errors.Is(err, sevsnp.ErrVerify) {
		t.Fatalf("Milan report without the Milan root: err %v, want ErrVerify", err)
	}
}

func TestEvidenceDecodingIsStrict(t *testing.T) {
	report, vcek, ev := genuine(t)
	for name, bad := range map[string][]byte{
		"empty":          nil,
		"truncated":      ev[:len(ev)-1],
		"trailing":       append(bytes.Clone(ev), 0),
		"short report":   append(append([]byte{0x04, 0x9f}, report[:0x49f]...), append([]byte{byte(len(vcek) >> 8), byte(len(vcek))}, vcek...)...),
		"no certificate": append(append([]byte{0x04, 0xa0}, report...), 0, 0),
	} {
		if _, err := sevsnp.Verify(bad, sevsnp.Roots(), genuineTime); !errors.Is(err, sevsnp.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzVerify: arbitrary evidence never panics the decoder or the verifier,
// and nothing but the genuine report's contents verify.
func FuzzVerify(f *testing.F) {
	report, _, ev := genuine(f)
	f.Add(ev)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _ = sevsnp.DecodeEvidence(data)
		r, err := sevsnp.Verify(data, sevsnp.Roots(), genuineTime)
		if err == nil && !bytes.Equal(r.Measurement, report[0x90:0xc0]) {
			t.Fatal("evidence with another measurement verifies")
		}
	})
}

// BenchmarkVerify: verifying the genuine report (VCEK → ASK → ARK, RSA-PSS
// 4096, and the report's ECDSA P-384 signature), as a client does once per
// attestation.
func BenchmarkVerify(b *testing.B) {
	_, _, ev := genuine(b)
	roots := sevsnp.Roots()
	for b.Loop() {
		if _, err := sevsnp.Verify(ev, roots, genuineTime); err != nil {
			b.Fatal(err)
		}
	}
}
