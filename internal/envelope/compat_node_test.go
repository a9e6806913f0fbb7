package envelope

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"
	"time"
)

// TestNodeInterop has Node.js (WebCrypto only, testdata/js/compat.mjs) seal a
// compatibility-mode request that the Go opener opens, then open the Go
// response — and refuse a tampered one.
func TestNodeInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	k, _ := testRSA(t)
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "testdata/js/interop.mjs")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	out := bufio.NewScanner(stdout)
	out.Buffer(nil, 1<<20)
	send := func(v any) {
		b, _ := json.Marshal(v)
		stdin.Write(append(b, '\n'))
	}
	recv := func(v any) {
		t.Helper()
		if !out.Scan() {
			t.Fatalf("node: no output: %v\n%s", out.Err(), stderr.String())
		}
		if err := json.Unmarshal(out.Bytes(), v); err != nil {
			t.Fatalf("node output %q: %v", out.Text(), err)
		}
	}

	fields := map[string]string{"username": "ålice", "credential": `{"id":"x"}`}
	var nodeID NodeID
	nodeID[0], nodeID[31] = 7, 9
	send(map[string]any{"spki": spki, "node": nodeID[:], "method": "completeRegistration", "scope": "app-1", "fields": fields})
	var sealed struct {
		EncryptedKey string            `json:"encryptedKey"`
		Body         map[string]string `json:"body"`
	}
	recv(&sealed)

	now := time.Now()
	other, _ := newCompatOpener(t, &now, k)
	if _, err := other.Open(context.Background(), sealed.EncryptedKey, sealed.Body); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("a node with another id opened the Node.js request: %v", err)
	}
	o, _ := newCompatOpener(t, &now, k)
	o.BindNode(nodeID)
	got, err := o.Open(context.Background(), sealed.EncryptedKey, sealed.Body)
	if err != nil {
		t.Fatalf("Go cannot open the Node.js request: %v", err)
	}
	if got.Method != "completeRegistration" || got.Scope != "app-1" || len(got.Fields) != 2 ||
		string(got.Fields["username"]) != "ålice" || string(got.Fields["credential"]) != `{"id":"x"}` {
		t.Fatalf("opened %+v", got)
	}
	if d := now.Sub(got.Time); d < -time.Minute || d > time.Minute {
		t.Fatalf("timestamp %v", got.Time)
	}
	if _, err := o.Open(context.Background(), sealed.EncryptedKey, sealed.Body); err == nil {
		t.Fatal("replayed Node.js request opened")
	}

	resp, err := got.SealResponse(map[string][]byte{"result": []byte("registered ✓")})
	if err != nil {
		t.Fatal(err)
	}
	tampered := map[string]string{}
	for k, v := range resp {
		tampered[k] = v
	}
	raw, _ := b64.DecodeString(tampered["result"])
	raw[len(raw)-1] ^= 1
	tampered["result"] = b64.EncodeToString(raw)
	send(map[string]any{"responses": []map[string]string{resp, tampered}})
	var res struct {
		Results []struct {
			Fields map[string]string `json:"fields"`
			Error  string            `json:"error"`
		} `json:"results"`
	}
	recv(&res)
	if len(res.Results) != 2 {
		t.Fatalf("results: %+v", res)
	}
	if r := res.Results[0]; r.Error != "" || r.Fields["result"] != "registered ✓" || len(r.Fields) != 1 {
		t.Fatalf("Node.js cannot open the Go response: %+v", r)
	}
	if res.Results[1].Error == "" {
		t.Fatal("Node.js opened a tampered response")
	}
}
