package sim

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keymesh/keymesh/internal/enclave"
)

// fakeExe writes a file to stand in for an executable, so one test process
// can run backends with different measurements.
func fakeExe(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "exe")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t *testing.T, dir, exe string) *Backend {
	t.Helper()
	b, err := Open(Config{Dir: dir, Executable: exe})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMeasurementIsSHA256OfExecutable(t *testing.T) {
	b := open(t, t.TempDir(), fakeExe(t, "abc"))
	// SHA-256("abc"), FIPS 180-2 Appendix B.1.
	if got := b.Measurement().String(); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("measurement = %s", got)
	}
	self, err := Open(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	want, _ := enclave.MeasureFile(exe)
	if self.Measurement() != want {
		t.Fatal("default measurement is not the running executable's hash")
	}
}

func TestSealUnseal(t *testing.T) {
	dir := t.TempDir()
	exeA := fakeExe(t, "build A")
	a := open(t, dir, exeA)
	secret := []byte("share record")
	s, err := a.Seal(secret, "share/1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(s, secret) {
		t.Fatal("sealed blob contains the plaintext")
	}
	// Reopening the same platform and binary (a restart) unseals.
	a2 := open(t, dir, exeA)
	got, err := a2.Unseal(s, "share/1")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("unseal after restart: %q, %v", got, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, platformFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("platform file mode: %v %v", fi.Mode(), err)
	}

	// Another binary on the same platform: a MeasurementError naming both.
	b := open(t, dir, fakeExe(t, "build B"))
	_, err = b.Unseal(s, "share/1")
	var me *enclave.MeasurementError
	if !errors.As(err, &me) || me.SealedTo != a.Measurement() || me.Running != b.Measurement() {
		t.Fatalf("other binary: err = %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, a.Measurement().String()) || !strings.Contains(msg, b.Measurement().String()) {
		t.Fatalf("error does not name both measurements: %s", msg)
	}
	// Even with the header rewritten to claim b's measurement, b's key differs.
	var blob enclave.Sealed
	if err := blob.UnmarshalBinary(s); err != nil {
		t.Fatal(err)
	}
	blob.Measurement = b.Measurement()
	forged, _ := blob.MarshalBinary()
	if _, err := b.Unseal(forged, "share/1"); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("forged header: err = %v", err)
	}

	// Same binary on another platform (another data dir).
	other := open(t, t.TempDir(), exeA)
	if _, err := other.Unseal(s, "share/1"); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("other platform: err = %v", err)
	}
	// Wrong label.
	if _, err := a.Unseal(s, "share/2"); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("wrong label: err = %v", err)
	}
	// Any flipped byte.
	for i := range s {
		c := bytes.Clone(s)
		c[i] ^= 0x40
		if _, err := a.Unseal(c, "share/1"); err == nil {
			t.Fatalf("flipped byte %d: unsealed", i)
		}
	}
}

func TestQuote(t *testing.T) {
	b := open(t, t.TempDir(), fakeExe(t, "q"))
	var rd enclave.ReportData
	copy(rd[:], "keys")
	q, err := b.Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Simulated || q.Platform != "sim" || q.Measurement != b.Measurement() || q.ReportData != rd {
		t.Fatalf("quote fields: %+v", q)
	}
	enc, _ := q.MarshalBinary()
	var back enclave.Quote
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	roots := []ed25519.PublicKey{b.PlatformKey()}
	if err := VerifyQuote(&back, roots); err != nil {
		t.Fatalf("VerifyQuote: %v", err)
	}
	if err := VerifyQuote(&back, nil); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("VerifyQuote without a root: %v", err)
	}
	// An attacker's quote: a fresh platform key, signing the same fields.
	// The evidence names its own key; only the pinned root counts.
	_, forgerKey, _ := ed25519.GenerateKey(nil)
	forged := back
	forged.Evidence = append(bytes.Clone(forgerKey.Public().(ed25519.PublicKey)),
		ed25519.Sign(forgerKey, append([]byte(quoteDomain), forged.SignedBytes()...))...)
	if err := VerifyQuote(&forged, roots); !errors.Is(err, ErrUntrustedPlatform) {
		t.Fatalf("forged quote with a fresh platform key: %v", err)
	}
	// The root's key named, another key's signature.
	copy(forged.Evidence, b.PlatformKey())
	if err := VerifyQuote(&forged, roots); err == nil {
		t.Fatal("forged signature under the root's name verifies")
	}
	tamper := []func(q *enclave.Quote){
		func(q *enclave.Quote) { q.ReportData[0] ^= 1 },
		func(q *enclave.Quote) { q.Measurement[0] ^= 1 },
		func(q *enclave.Quote) { q.Simulated = false },
		func(q *enclave.Quote) { q.Evidence[70] ^= 1 },
		func(q *enclave.Quote) { q.Evidence = q.Evidence[:95] },
		func(q *enclave.Quote) { q.Platform = "sev-snp" },
	}
	for i, f := range tamper {
		var c enclave.Quote
		_ = c.UnmarshalBinary(enc)
		f(&c)
		if err := VerifyQuote(&c, roots); err == nil {
			t.Errorf("tamper %d: quote verifies", i)
		}
	}
	if err := b.LocalVerifier(b.Measurement())(q); err != nil {
		t.Fatal(err)
	}
	if err := b.LocalVerifier(enclave.Measurement{})(q); err == nil {
		t.Fatal("LocalVerifier accepted the wrong measurement")
	}
	stranger := open(t, t.TempDir(), fakeExe(t, "q"))
	if err := stranger.LocalVerifier(b.Measurement())(q); err == nil {
		t.Fatal("LocalVerifier accepted another platform's quote")
	}
}

func TestGenerateKey(t *testing.T) {
	b := open(t, t.TempDir(), fakeExe(t, "k"))
	k, sealed, err := b.GenerateKey(enclave.KeyHPKEXWing, "hpke")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := enclave.OpenKey(b, sealed, "hpke")
	if err != nil || !k.Equal(k2) {
		t.Fatalf("OpenKey: %v", err)
	}
	if _, err := enclave.OpenKey(b, sealed, "identity"); !errors.Is(err, enclave.ErrUnseal) {
		t.Fatalf("OpenKey with the wrong label: %v", err)
	}
}

func TestMigration(t *testing.T) {
	dir := t.TempDir()
	old := open(t, dir, fakeExe(t, "v1"))
	next := open(t, dir, fakeExe(t, "v2"))
	id, _ := old.Seal([]byte("identity key"), "identity")
	share, _ := old.Seal([]byte("share"), "share/w1")
	secrets := []enclave.Secret{{Label: "identity", Sealed: id}, {Label: "share/w1", Sealed: share}}

	// The operator expects v3, but v2 asks: the old build refuses.
	_, req, err := enclave.NewMigrationTarget(next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enclave.ExportMigration(old, req, old.LocalVerifier(enclave.Measurement{3}), secrets); err == nil {
		t.Fatal("export to an unexpected measurement succeeded")
	}

	target, req, err := enclave.NewMigrationTarget(next)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := enclave.ExportMigration(old, req, old.LocalVerifier(next.Measurement()), secrets)
	if err != nil {
		t.Fatal(err)
	}
	// A bundle whose ciphertext was altered is refused (the source quote
	// covers it), and refusing does not use up the target.
	bad := bytes.Clone(bundle)
	bad[len(bad)-1] ^= 1
	if _, err := target.Import(bad, next.LocalVerifier(old.Measurement())); err == nil {
		t.Fatal("tampered bundle imported")
	}
	// The target insists on the old build's measurement.
	if _, err := target.Import(bundle, next.LocalVerifier(next.Measurement())); err == nil {
		t.Fatal("bundle from an unexpected source imported")
	}
	got, err := target.Import(bundle, next.LocalVerifier(old.Measurement()))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Label != "identity" || got[1].Label != "share/w1" {
		t.Fatalf("imported %+v", got)
	}
	for i, want := range []string{"identity key", "share"} {
		pt, err := next.Unseal(got[i].Sealed, got[i].Label)
		if err != nil || string(pt) != want {
			t.Fatalf("resealed secret %d: %q, %v", i, pt, err)
		}
		var me *enclave.MeasurementError
		if _, err := old.Unseal(got[i].Sealed, got[i].Label); !errors.As(err, &me) {
			t.Fatalf("old build opens the new build's secret: %v", err)
		}
	}
	if _, err := target.Import(bundle, next.LocalVerifier(old.Measurement())); err == nil {
		t.Fatal("second import succeeded")
	}
	// A bundle made for another request does not open here.
	target2, _, _ := enclave.NewMigrationTarget(next)
	if _, err := target2.Import(bundle, next.LocalVerifier(old.Measurement())); err == nil {
		t.Fatal("bundle for another request imported")
	}
}

func TestBackendNeverPrints(t *testing.T) {
	b := open(t, t.TempDir(), fakeExe(t, "p"))
	holder := struct{ B, c *Backend }{b, b}
	for _, secret := range [][]byte{b.secrets().sealSecret, b.secrets().signKey.Seed()} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%d", "%s", "%q"} {
			for _, v := range []any{b, *b, holder} {
				out := fmt.Sprintf(verb, v)
				dec := fmt.Sprint(secret[:8])
				if strings.Contains(out, dec[1:len(dec)-1]) || strings.Contains(out, hex.EncodeToString(secret[:8])) {
					t.Fatalf("%s prints a platform secret: %s", verb, out)
				}
			}
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	exe := fakeExe(t, "node v1")
	var stored []byte
	load := func() ([]byte, error) { return stored, nil }
	save := func(b []byte) error { stored = b; return nil }

	b := open(t, dir, exe)
	k1, err := enclave.LoadOrCreateKey(b, enclave.KeyEd25519, "node/identity", load, save)
	if err != nil || stored == nil {
		t.Fatalf("create: %v", err)
	}
	// Restart: the same key comes back.
	k2, err := enclave.LoadOrCreateKey(open(t, dir, exe), enclave.KeyEd25519, "node/identity", load, save)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("reload: %v", err)
	}
	if _, err := enclave.LoadOrCreateKey(b, enclave.KeyHPKEXWing, "node/identity", load, save); err == nil {
		t.Fatal("wrong kind accepted")
	}
	// New binary: refuses, with the measurement error, and does not
	// overwrite the stored key.
	before := bytes.Clone(stored)
	_, err = enclave.LoadOrCreateKey(open(t, dir, fakeExe(t, "node v2")), enclave.KeyEd25519, "node/identity", load, save)
	var me *enclave.MeasurementError
	if !errors.As(err, &me) || !bytes.Equal(stored, before) {
		t.Fatalf("changed binary: %v", err)
	}
}

// TestProvisionCluster: the nodes of a cluster sign with one platform key
// and keep their own seal secrets; re-provisioning keeps what a node sealed,
// and keeps the key when asked to.
func TestProvisionCluster(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	pub, err := ProvisionCluster([]string{d1, d2}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	exe := fakeExe(t, "p")
	b1, b2 := open(t, d1, exe), open(t, d2, exe)
	if !b1.PlatformKey().Equal(pub) || !b2.PlatformKey().Equal(pub) {
		t.Fatal("provisioned platforms do not sign with the cluster key")
	}
	if got, err := ReadPlatformKey(d1); err != nil || !got.Equal(pub) {
		t.Fatalf("ReadPlatformKey: %v", err)
	}
	s, _ := b1.Seal([]byte("share"), "l")
	if _, err := b2.Unseal(s, "l"); err == nil {
		t.Fatal("another node of the cluster unsealed a node's secret")
	}
	// Kept: same key, and a new node joins it.
	d3 := t.TempDir()
	if kept, err := ProvisionCluster([]string{d3, d1, d2}, true, nil); err != nil || !kept.Equal(pub) {
		t.Fatalf("keep: %v", err)
	}
	if got, _ := ReadPlatformKey(d3); !got.Equal(pub) {
		t.Fatal("a new node did not get the kept key")
	}
	// Fresh: another key, the seal secret stays.
	fresh, err := ProvisionCluster([]string{d1}, false, nil)
	if err != nil || fresh.Equal(pub) {
		t.Fatalf("fresh key: %v", err)
	}
	b1 = open(t, d1, exe)
	if pt, err := b1.Unseal(s, "l"); err != nil || string(pt) != "share" {
		t.Fatalf("re-provisioned node lost its seal secret: %v", err)
	}
	if !b1.PlatformKey().Equal(fresh) {
		t.Fatal("re-provisioned node signs with the old key")
	}
	if _, err := ReadPlatformKey(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no platform: %v", err)
	}
}
