package nitro_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/attest/nitro"
	"github.com/keymesh/keymesh/internal/attest/nitro/nitrotest"
)

// The genuine document (testdata/README.md): made by an AWS Nitro enclave on
// 2022-09-15, published in capeprivacy/cape-js's tests. Its signing
// certificate is valid 17:43:24 to 20:43:27 UTC that day.
var (
	genuineTime = time.Date(2022, 9, 15, 17, 44, 24, 0, time.UTC)
	genuinePCR0 = "ea4212ee889ba1b4dbfe744aadecca8b1930de60a3a1ce3b0c79f42b231700fc561c3d9b34f0565ed9eb6f460996624c"
)

func genuine(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "cape-js-2022-09-15.cose"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestPinnedRootIsAWSRootG1(t *testing.T) {
	sum := sha256.Sum256(nitro.AWSRootG1().Raw)
	if got := hex.EncodeToString(sum[:]); got != nitro.AWSRootG1SHA256 {
		t.Fatalf("pinned root fingerprint %s, AWS publishes %s", got, nitro.AWSRootG1SHA256)
	}
}

func TestGenuineDocumentVerifies(t *testing.T) {
	d, err := nitro.Verify(genuine(t), nitro.Roots(), genuineTime)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(d.PCR0()); got != genuinePCR0 {
		t.Fatalf("PCR0 %s, want %s", got, genuinePCR0)
	}
	pcr0, _ := hex.DecodeString(genuinePCR0)
	if d.Measurement() != sha256.Sum256(pcr0) {
		t.Fatal("measurement is not SHA-256(PCR0)")
	}
	if want := "i-0697c9729fa547b20-enc0183422ede9a5dc8"; d.ModuleID != want {
		t.Fatalf("module_id %q, want %q", d.ModuleID, want)
	}
	if want := "47b5fba6979cbf7e567e2629"; hex.EncodeToString(d.Nonce) != want {
		t.Fatalf("nonce %x, want %s", d.Nonce, want)
	}
	if !bytes.HasPrefix(d.UserData, []byte(`{"func_checksum":`)) {
		t.Fatalf("user_data %q", d.UserData)
	}
	if d.Timestamp.Sub(genuineTime).Abs() > time.Minute {
		t.Fatalf("timestamp %s", d.Timestamp)
	}
}

// TestFlippedByteRefused flips one bit of many bytes across the document
// (headers, payload, the certificates in it, the signature): each copy is
// refused.
func TestFlippedByteRefused(t *testing.T) {
	raw := genuine(t)
	positions := []int{len(raw) - 1, len(raw) - 50} // signature
	for i := 0; i < len(raw); i += 37 {
		positions = append(positions, i)
	}
	leafAt := bytes.Index(raw, []byte("certificate")) + 20 // inside the signing certificate
	bundleAt := bytes.Index(raw, []byte("cabundle")) + 600 // inside an intermediate
	positions = append(positions, leafAt, bundleAt)
	for _, i := range positions {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		if _, err := nitro.Verify(bad, nitro.Roots(), genuineTime); err == nil {
			t.Fatalf("document with byte %d flipped verifies", i)
		}
	}
}

func TestExpiredChainRefused(t *testing.T) {
	raw := genuine(t)
	for _, at := range []time.Time{
		time.Date(2022, 9, 15, 20, 43, 28, 0, time.UTC), // a second after the signing certificate expired
		time.Date(2022, 9, 15, 17, 43, 23, 0, time.UTC), // before it was issued
		time.Now(),
	} {
		if _, err := nitro.Verify(raw, nitro.Roots(), at); !errors.Is(err, nitro.ErrChain) {
			t.Fatalf("at %s: err %v, want ErrChain", at, err)
		}
	}
}

func TestWrongRootRefused(t *testing.T) {
	ca, err := nitrotest.NewCA(genuineTime.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nitro.Verify(genuine(t), ca.Roots(), genuineTime); !errors.Is(err, nitro.ErrChain) {
		t.Fatalf("genuine document under another root: err %v, want ErrChain", err)
	}
}

// TestSelfMadeChainRefused plays an operator who signs a document binding
// its own key with a chain of its own making (its root in cabundle): the
// pinned AWS root refuses it, though the generated root accepts it.
func TestSelfMadeChainRefused(t *testing.T) {
	ca, err := nitrotest.NewCA(genuineTime.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pcr0, _ := hex.DecodeString(genuinePCR0)
	forged, err := ca.Sign(pcr0, bytes.Repeat([]byte{7}, 64), genuineTime)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nitro.Verify(forged, nitro.Roots(), genuineTime); !errors.Is(err, nitro.ErrChain) {
		t.Fatalf("self-made chain under the AWS root: err %v, want ErrChain", err)
	}
	d, err := nitro.Verify(forged, ca.Roots(), genuineTime)
	if err != nil {
		t.Fatalf("the generated root's own document: %v", err)
	}
	if !bytes.Equal(d.UserData, bytes.Repeat([]byte{7}, 64)) {
		t.Fatal("user_data not returned")
	}
}

func TestDebugModeRefused(t *testing.T) {
	ca, err := nitrotest.NewCA(genuineTime.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ca.Sign(make([]byte, 48), nil, genuineTime)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nitro.Verify(doc, ca.Roots(), genuineTime); !errors.Is(err, nitro.ErrDebug) {
		t.Fatalf("debug-mode document: err %v, want ErrDebug", err)
	}
}

func TestMalformedRefused(t *testing.T) {
	raw := genuine(t)
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": raw[:len(raw)-1],
		"trailing":  append(bytes.Clone(raw), 0),
		"tagged":    append([]byte{0xd2}, raw...), // COSE_Sign1 tag 18: NSM documents are untagged
		"huge":      make([]byte, 1<<16),
	} {
		if _, err := nitro.Verify(bad, nitro.Roots(), genuineTime); !errors.Is(err, nitro.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzVerify feeds the decoder and verifier arbitrary bytes: never a panic,
// and nothing but the genuine document's contents verify under the AWS root.
func FuzzVerify(f *testing.F) {
	raw := genuine(f)
	f.Add(raw)
	f.Add(raw[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = nitro.Parse(data)
		// Another encoding of the genuine document may verify; nothing
		// with other contents may.
		if d, err := nitro.Verify(data, nitro.Roots(), genuineTime); err == nil &&
			(hex.EncodeToString(d.PCR0()) != genuinePCR0 || !bytes.Contains(raw, d.UserData)) {
			t.Fatalf("a document with other contents verifies")
		}
	})
}

// BenchmarkVerify: verifying the genuine document (COSE decode, a chain of
// four ECDSA P-384 certificates, the ES384 signature), as a client does
// once per attestation.
func BenchmarkVerify(b *testing.B) {
	raw := genuine(b)
	roots := nitro.Roots()
	for b.Loop() {
		if _, err := nitro.Verify(raw, roots, genuineTime); err != nil {
			b.Fatal(err)
		}
	}
}
