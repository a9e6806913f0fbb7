package client_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/client"
	"github.com/keymesh/keymesh/internal/attest"
	"github.com/keymesh/keymesh/internal/attest/nitro"
	"github.com/keymesh/keymesh/internal/attest/nitro/nitrotest"
	"github.com/keymesh/keymesh/internal/enclave"
	"github.com/keymesh/keymesh/internal/envelope"
)

// TestSDKRefusesSelfSignedNitro plays an operator (or anyone on the path)
// who answers GET /attestation with a Nitro document of its own making:
// fresh, made for the client's challenge, binding its own request key and
// claiming the pinned image (PCR0) — but signed by a chain it generated.
// The SDK verifies Nitro evidence against the AWS root pinned in
// attest/nitro and refuses it, with a pinned measurement and with trust on
// first use.
func TestSDKRefusesSelfSignedNitro(t *testing.T) {
	ca, err := nitrotest.NewCA(time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pcr0 := bytes.Repeat([]byte{0x5a}, 48)
	m := enclave.Measurement(nitro.MeasurementOf(pcr0))
	served := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/attestation" {
			http.NotFound(w, r)
			return
		}
		challenge, err := hex.DecodeString(r.URL.Query().Get("challenge"))
		if err != nil {
			http.Error(w, "challenge", http.StatusBadRequest)
			return
		}
		sk, _ := ecdh.X25519().GenerateKey(rand.Reader)
		keys := attest.Keys{HPKEKEM: envelope.KEMX25519, HPKE: sk.PublicKey().Bytes(), Identity: bytes.Repeat([]byte{3}, 32)}
		kb, _ := keys.MarshalBinary()
		now := time.Now()
		f := attest.Freshness{Issued: now, Expires: now.Add(attest.DefaultValidity), Challenge: challenge}
		fb, _ := f.MarshalBinary()
		rd := attest.ReportData(kb, fb)
		ev, err := ca.Sign(pcr0, rd[:], now)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		q := enclave.Quote{Platform: enclave.PlatformNitro, Measurement: m, ReportData: rd, Evidence: ev}
		qb, _ := q.MarshalBinary()
		served++
		json.NewEncoder(w).Encode(attest.Document{Keys: kb, Fresh: fb, Quote: qb})
	}))
	defer srv.Close()

	for name, a := range map[string]client.Attestation{
		"pinned":         {Measurements: []string{m.String()}, MinKEM: "x25519"},
		"trust on first": {TrustOnFirstUse: true, MinKEM: "x25519"},
	} {
		c, err := client.New(srv.URL, client.WithAttestation(a))
		if err != nil {
			t.Fatal(err)
		}
		before := served
		_, err = c.Attest(context.Background())
		if served != before+1 {
			t.Fatalf("%s: the SDK did not fetch the document", name)
		}
		if !errors.Is(err, attest.ErrQuote) || !errors.Is(err, nitro.ErrChain) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s: self-signed Nitro document: err %v, want a refused certificate chain", name, err)
		}
		if c.Attested() != nil {
			t.Fatalf("%s: the client recorded an attestation", name)
		}
	}
}
