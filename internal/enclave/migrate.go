package enclave

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/keymesh/keymesh/internal/codec"
)

// Migration moves sealed secrets from one build (the source, the old binary)
// to another (the target, the new binary) on the same platform. Hardware
// sealing keys are derived from the running measurement only (SGX EGETKEY,
// SNP MSG_KEY_REQ), so the old build cannot seal to the new one directly.
// Instead:
//
//  1. The target generates an ephemeral HPKE X-Wing key and quotes over its
//     public key: the migration request.
//  2. The source verifies the request's quote (platform evidence, and that the
//     measurement is the one the operator expects for the new build), unseals
//     each secret and HPKE-seals them all to the ephemeral key; it quotes over
//     the ciphertext: the bundle.
//  3. The target verifies the bundle's quote (the old build's measurement),
//     opens the bundle with its ephemeral key and reseals each secret under its
//     own measurement.
//
// Secrets exist in plaintext only inside the two attested builds. The
// ephemeral key lives in the target's memory only, so a bundle can be
// imported once, by the process that made the request.

// Secret is a sealed secret and the label it was sealed under.
type Secret struct {
	Label  string
	Sealed []byte
}

// Verifier checks a quote's platform evidence and measurement; it returns an
// error to refuse. Package attest builds them.
type Verifier func(*Quote) error

const (
	migrateRequestMagic = "KMMIGREQ\x01"
	migrateBundleMagic  = "KMMIGBND\x01"
	maxMigrateField     = 32 << 20
	maxMigrateSecrets   = 1 << 16
	maxLabelLen         = 1 << 10
)

var (
	migrateKDF  = hpke.HKDFSHA256()
	migrateAEAD = hpke.AES256GCM()
)

// MigrationTarget is the new build's side of a migration. It holds the
// ephemeral private key; use it for one Import.
type MigrationTarget struct {
	b       Backend
	priv    func() hpke.PrivateKey // a closure, so that fmt cannot print it
	request []byte
	used    bool
}

// NewMigrationTarget starts a migration on the target backend b and returns
// the request to hand to the source build.
func NewMigrationTarget(b Backend) (*MigrationTarget, []byte, error) {
	priv, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("enclave: migration key: %w", err)
	}
	pub := priv.PublicKey().Bytes()
	q, err := b.Quote(migrateRequestReportData(pub))
	if err != nil {
		return nil, nil, fmt.Errorf("enclave: migration request quote: %w", err)
	}
	qb, err := q.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	req := []byte(migrateRequestMagic)
	req = codec.AppendVar(req, pub)
	req = codec.AppendVar(req, qb)
	return &MigrationTarget{b: b, priv: hide(priv), request: req}, bytes.Clone(req), nil
}

func migrateRequestReportData(pub []byte) ReportData {
	h := sha512.New()
	h.Write([]byte("keymesh enclave migration request v1\x00"))
	h.Write(pub)
	var rd ReportData
	h.Sum(rd[:0])
	return rd
}

func migrateBundleReportData(request, enc, ct []byte) ReportData {
	reqHash := sha256.Sum256(request)
	h := sha512.New()
	h.Write([]byte("keymesh enclave migration bundle v1\x00"))
	h.Write(reqHash[:])
	h.Write(codec.AppendVar(nil, enc))
	h.Write(codec.AppendVar(nil, ct))
	var rd ReportData
	h.Sum(rd[:0])
	return rd
}

func migrateInfo(request []byte) []byte {
	reqHash := sha256.Sum256(request)
	return append([]byte("keymesh enclave migration v1\x00"), reqHash[:]...)
}

func parseMigrationRequest(req []byte) (pub []byte, q *Quote, err error) {
	r := codec.NewReader(req, ErrMalformed)
	r.Magic(migrateRequestMagic, "a migration request")
	pub = r.Var(maxMigrateField, "public key")
	qb := r.Var(maxMigrateField, "quote")
	if err := r.Done(); err != nil {
		return nil, nil, fmt.Errorf("enclave: migration request: %w", err)
	}
	q = new(Quote)
	if err := q.UnmarshalBinary(qb); err != nil {
		return nil, nil, fmt.Errorf("enclave: migration request: %w", err)
	}
	return pub, q, nil
}

// ExportMigration is the source build's side: it verifies the target's
// request with verifyTarget (which must check the new build's measurement),
// unseals each secret with b and returns the bundle for the target. Nothing
// is unsealed if the request does not verify.
func ExportMigration(b Backend, request []byte, verifyTarget Verifier, secrets []Secret) ([]byte, error) {
	if len(secrets) > maxMigrateSecrets {
		return nil, fmt.Errorf("enclave: %d secrets, limit %d", len(secrets), maxMigrateSecrets)
	}
	pubBytes, q, err := parseMigrationRequest(request)
	if err != nil {
		return nil, err
	}
	if q.Platform != b.Platform() {
		return nil, fmt.Errorf("enclave: migration target runs on platform %q, this is %q", q.Platform, b.Platform())
	}
	if err := verifyTarget(q); err != nil {
		return nil, fmt.Errorf("enclave: migration target refused: %w", err)
	}
	if want := migrateRequestReportData(pubBytes); !bytes.Equal(q.ReportData[:], want[:]) {
		return nil, errors.New("enclave: migration request quote does not cover its key")
	}
	pub, err := hpke.MLKEM768X25519().NewPublicKey(pubBytes)
	if err != nil {
		return nil, fmt.Errorf("enclave: migration request key: %w", err)
	}

	pt := binary.BigEndian.AppendUint32(nil, uint32(len(secrets)))
	defer func() { clear(pt) }()
	for _, s := range secrets {
		if len(s.Label) > maxLabelLen {
			return nil, fmt.Errorf("enclave: label of %d bytes, limit %d", len(s.Label), maxLabelLen)
		}
		v, err := b.Unseal(s.Sealed, s.Label)
		if err != nil {
			return nil, fmt.Errorf("enclave: migration: secret %q: %w", s.Label, err)
		}
		pt = codec.AppendVar(pt, []byte(s.Label))
		pt = codec.AppendVar(pt, v)
		clear(v)
	}

	enc, sender, err := hpke.NewSender(pub, migrateKDF, migrateAEAD, migrateInfo(request))
	if err != nil {
		return nil, fmt.Errorf("enclave: migration: %w", err)
	}
	ct, err := sender.Seal(nil, pt)
	if err != nil {
		return nil, fmt.Errorf("enclave: migration: %w", err)
	}
	sq, err := b.Quote(migrateBundleReportData(request, enc, ct))
	if err != nil {
		return nil, fmt.Errorf("enclave: migration bundle quote: %w", err)
	}
	sqb, err := sq.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := []byte(migrateBundleMagic)
	out = codec.AppendVar(out, sqb)
	out = codec.AppendVar(out, enc)
	out = codec.AppendVar(out, ct)
	return out, nil
}

// Import verifies the bundle's quote with verifySource (which must check the
// old build's measurement), opens it and returns every secret resealed by the
// target backend under its own measurement, in the source's order. Import
// may be called once; the ephemeral key is dropped afterwards.
func (t *MigrationTarget) Import(bundle []byte, verifySource Verifier) ([]Secret, error) {
	if t.used {
		return nil, errors.New("enclave: migration target already used")
	}
	r := codec.NewReader(bundle, ErrMalformed)
	r.Magic(migrateBundleMagic, "a migration bundle")
	qb := r.Var(maxMigrateField, "quote")
	enc := r.Var(maxMigrateField, "encapsulated key")
	ct := r.Var(maxMigrateField, "ciphertext")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("enclave: migration bundle: %w", err)
	}
	var q Quote
	if err := q.UnmarshalBinary(qb); err != nil {
		return nil, fmt.Errorf("enclave: migration bundle: %w", err)
	}
	if q.Platform != t.b.Platform() {
		return nil, fmt.Errorf("enclave: migration source runs on platform %q, this is %q", q.Platform, t.b.Platform())
	}
	if err := verifySource(&q); err != nil {
		return nil, fmt.Errorf("enclave: migration source refused: %w", err)
	}
	if want := migrateBundleReportData(t.request, enc, ct); !bytes.Equal(q.ReportData[:], want[:]) {
		return nil, errors.New("enclave: migration bundle quote does not cover this request and ciphertext")
	}
	recv, err := hpke.NewRecipient(enc, t.priv(), migrateKDF, migrateAEAD, migrateInfo(t.request))
	if err != nil {
		return nil, fmt.Errorf("enclave: migration bundle: %w", err)
	}
	pt, err := recv.Open(nil, ct)
	if err != nil {
		return nil, fmt.Errorf("enclave: migration bundle does not open: %w", err)
	}
	defer clear(pt)
	t.used = true
	t.priv = nil

	pr := codec.NewReader(pt, ErrMalformed)
	n := pr.U32("count")
	if pr.Err() == nil && n > maxMigrateSecrets {
		pr.Fail("%d secrets", n)
	}
	type item struct {
		label string
		value []byte
	}
	var items []item
	for i := uint32(0); i < n && pr.Err() == nil; i++ {
		l := pr.Var(maxLabelLen, "label")
		v := pr.Var(maxMigrateField, "secret")
		items = append(items, item{string(l), v})
	}
	if err := pr.Done(); err != nil {
		return nil, fmt.Errorf("enclave: migration bundle contents: %w", err)
	}
	out := make([]Secret, 0, len(items))
	for _, it := range items {
		s, err := t.b.Seal(it.value, it.label)
		if err != nil {
			return nil, fmt.Errorf("enclave: migration: resealing %q: %w", it.label, err)
		}
		out = append(out, Secret{Label: it.label, Sealed: s})
	}
	return out, nil
}
