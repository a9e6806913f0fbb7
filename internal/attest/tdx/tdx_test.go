package tdx_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/attest/tdx"
)

// The genuine quote (testdata/README.md): its PCK certificate is valid
// 2022-09-20 to 2029-09-20 under Intel's PCK Platform CA and root.
var (
	genuineTime = time.Date(2023, 7, 1, 1, 0, 0, 0, time.UTC)
	genuineMRTD = "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb"
	genuineRD   = "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113"
	genuineM    = "f02d924aed90ff12a4a49d1fc187a46bcd874bba124cf9cd2b9e144c98281898"
)

// published is the file as go-tdx-guest publishes it: the genuine quote
// followed by 39 bytes its authors appended ("\nextra bytes(only for
// testing purpose)\n"), past the end that the quote's signed-data length
// gives.
func published(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "go-tdx-guest-tdx_prod_quote_SPR_E4.dat"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// genuine is the quote itself: the published file up to the end of its
// signed data (u32 little-endian length at 0x278).
func genuine(t testing.TB) []byte {
	t.Helper()
	raw := published(t)
	end := 0x27c + int(binary.LittleEndian.Uint32(raw[0x278:]))
	if end != len(raw)-39 || !bytes.HasSuffix(raw, []byte("\nextra bytes(only for testing purpose)\n")) {
		t.Fatalf("published quote: signed data ends at %d of %d bytes", end, len(raw))
	}
	return raw[:end]
}

// TestTrailingBytesRefused: bytes after the signed data (as in the
// published file) are covered by no signature, and refused.
func TestTrailingBytesRefused(t *testing.T) {
	if _, err := tdx.Verify(published(t), tdx.Roots(), genuineTime); !errors.Is(err, tdx.ErrMalformed) {
		t.Fatalf("quote with trailing bytes: err %v, want ErrMalformed", err)
	}
}

func TestPinnedRootIsIntelSGXRootCA(t *testing.T) {
	sum := sha256.Sum256(tdx.IntelRoot().Raw)
	if got := hex.EncodeToString(sum[:]); got != tdx.IntelRootSHA256 {
		t.Fatalf("pinned root fingerprint %s, want %s", got, tdx.IntelRootSHA256)
	}
	if !bytes.Contains(genuine(t), []byte("MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIw")) {
		t.Fatal("the genuine quote's chain does not end in the pinned root")
	}
}

func TestGenuineQuoteVerifies(t *testing.T) {
	q, err := tdx.Verify(genuine(t), tdx.Roots(), genuineTime)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(q.MRTD); got != genuineMRTD {
		t.Fatalf("MRTD %s, want %s", got, genuineMRTD)
	}
	if got := hex.EncodeToString(q.ReportData); got != genuineRD {
		t.Fatalf("REPORTDATA %s", got)
	}
	if m := q.Measurement(); hex.EncodeToString(m[:]) != genuineM {
		t.Fatalf("measurement %x, want %s", m, genuineM)
	}
	if q.Debug || len(q.RTMRs) != 4 {
		t.Fatalf("quote %+v", q)
	}
}

// TestFlippedByteRefused flips one bit in the header, the TD quote body
// (MRTD, RTMRs, REPORTDATA, attributes), the quote signature, the
// attestation key, the QE report and its signature, and the PCK chain.
func TestFlippedByteRefused(t *testing.T) {
	raw := genuine(t)
	positions := []int{
		0x08, 0x30 + 0x78 /* TDATTRIBUTES */, 0x30 + 0x88, /* MRTD */
		0x30 + 0x1a0 /* RTMR2 */, 0x30 + 0x208 /* REPORTDATA */, 0x277,
		0x27c, 0x2bc, 0x2fc, // quote signature, attestation key
		0x350, 0x480, 0x4d0, // QE report, its signature
	}
	pck := bytes.Index(raw, []byte("-----BEGIN CERTIFICATE-----"))
	positions = append(positions, pck+100, pck+500, len(raw)-200)
	for i := 0; i < len(raw); i += 97 {
		positions = append(positions, i)
	}
	for _, i := range positions {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if _, err := tdx.Verify(bad, tdx.Roots(), genuineTime); err == nil {
			t.Errorf("quote with byte %#x flipped verifies", i)
		}
	}
}

func TestExpiredChainRefused(t *testing.T) {
	raw := genuine(t)
	for _, at := range []time.Time{
		time.Date(2029, 9, 21, 0, 0, 0, 0, time.UTC), // the PCK certificate expired on 2029-09-20
		time.Date(2022, 9, 19, 0, 0, 0, 0, time.UTC), // before it was issued
	} {
		if _, err := tdx.Verify(raw, tdx.Roots(), at); !errors.Is(err, tdx.ErrVerify) {
			t.Fatalf("at %s: err %v, want ErrVerify", at, err)
		}
	}
}

func TestWrongRootRefused(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Intel SGX Root CA", Organization: []string{"Intel Corporation"}},
		NotBefore: genuineTime.AddDate(-5, 0, 0), NotAfter: genuineTime.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	if _, err := tdx.Verify(genuine(t), pool, genuineTime); !errors.Is(err, tdx.ErrVerify) {
		t.Fatalf("genuine quote under a generated root named like Intel's: err %v, want ErrVerify", err)
	}
}

func TestMalformedRefused(t *testing.T) {
	raw := genuine(t)
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"header":    raw[:48],
		"truncated": raw[:len(raw)-1],
		"trailing":  append(bytes.Clone(raw), 0),
		"huge":      make([]byte, 1<<15),
	} {
		if _, err := tdx.Verify(bad, tdx.Roots(), genuineTime); !errors.Is(err, tdx.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzVerify: arbitrary quotes never panic the decoder or the verifier,
// and nothing but the genuine quote's TD body verifies.
func FuzzVerify(f *testing.F) {
	f.Add(genuine(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = tdx.Parse(data)
		q, err := tdx.Verify(data, tdx.Roots(), genuineTime)
		if err == nil && (hex.EncodeToString(q.MRTD) != genuineMRTD || hex.EncodeToString(q.ReportData) != genuineRD) {
			t.Fatal("a quote with another TD body verifies")
		}
	})
}

// BenchmarkVerify: verifying the genuine quote (PCK chain, QE report
// signature, attestation key binding, quote signature; ECDSA P-256), as a
// client does once per attestation.
func BenchmarkVerify(b *testing.B) {
	raw := genuine(b)
	roots := tdx.Roots()
	for b.Loop() {
		if _, err := tdx.Verify(raw, roots, genuineTime); err != nil {
			b.Fatal(err)
		}
	}
}
