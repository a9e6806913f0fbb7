package envelope

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"crypto/hpke"
)

// golden is a request sealed once with a fixed key and kept in testdata, so a
// change to the wire format or the key schedule fails this test.
type golden struct {
	Key      string    `json:"x_wing_private_key"`
	Time     time.Time `json:"time"`
	Method   string    `json:"method"`
	Scope    string    `json:"scope"`
	Body     string    `json:"body"`
	Envelope string    `json:"envelope"`
}

const goldenFile = "testdata/golden_request.json"

func TestGoldenRequest(t *testing.T) {
	if *update {
		k := newKey(t, hpke.MLKEM768X25519())
		kb, _ := k.Bytes()
		g := golden{Key: hex.EncodeToString(kb), Time: t0, Method: "keymesh_vaultPut", Scope: "app-7", Body: `{"box":"..."}`}
		env, _, err := SealRequest(k.PublicKey(), Request{Method: g.Method, Scope: g.Scope, Body: []byte(g.Body)}, t0)
		if err != nil {
			t.Fatal(err)
		}
		g.Envelope = hex.EncodeToString(env)
		b, _ := json.MarshalIndent(g, "", " ")
		if err := os.WriteFile(goldenFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	k, err := hpke.MLKEM768X25519().NewPrivateKey(unhex(t, g.Key))
	if err != nil {
		t.Fatal(err)
	}
	now := g.Time.Add(time.Minute)
	o, _ := newOpener(t, &now, k)
	got, err := o.Open(context.Background(), unhex(t, g.Envelope))
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != g.Method || got.Scope != g.Scope || string(got.Body) != g.Body || !got.Time.Equal(g.Time) {
		t.Fatalf("golden request opened as %+v", got)
	}
}

func FuzzOpen(f *testing.F) {
	// The seed is the golden envelope, not a fresh seal: fuzzing workers rerun
	// this setup, and every process must agree on which input is genuine.
	b, err := os.ReadFile(goldenFile)
	if err != nil {
		f.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		f.Fatal(err)
	}
	kb, _ := hex.DecodeString(g.Key)
	k, err := hpke.MLKEM768X25519().NewPrivateKey(kb)
	if err != nil {
		f.Fatal(err)
	}
	now := g.Time
	o, _ := newOpener(f, &now, k)
	env, _ := hex.DecodeString(g.Envelope)
	f.Add(env)
	f.Add(env[:40])
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := parseRequest(in)
		if err == nil {
			// Canonical: the parse re-encodes to exactly the input.
			re := p.h.encode()
			re = append(re, p.mac...)
			re = binary.BigEndian.AppendUint32(re, uint32(len(p.ciphertext)))
			re = append(re, p.ciphertext...)
			if !bytes.Equal(re, in) {
				t.Fatalf("non-canonical envelope accepted")
			}
		}
		// Anything but the seed is rejected (a fresh seal needs the key).
		if _, err := o.Open(context.Background(), in); err == nil && !bytes.Equal(in, env) {
			t.Fatalf("opened a fuzzed envelope")
		}
	})
}
