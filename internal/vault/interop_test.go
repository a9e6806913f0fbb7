package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/vault"
	"github.com/keymesh/keymesh/internal/vault/kdf"
)

// jsDir holds package.json and package-lock.json pinning tweetnacl and
// scrypt-js; node_modules is installed on first use and not committed.
const jsDir = "testdata/js"

// runJS runs interop.js under Node with req on stdin. It skips the test if
// node or npm is not installed, and fails if the packages cannot be
// installed from the lockfile.
func runJS(t *testing.T, req any) []byte {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("interop test skipped: node is not installed (needs Node.js and npm to run the real tweetnacl and scrypt-js)")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("interop test skipped: npm is not installed (needs Node.js and npm to run the real tweetnacl and scrypt-js)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(jsDir, "node_modules", "tweetnacl", "package.json")); err != nil {
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = jsDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", jsDir, err, out)
		}
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, node, "interop.js")
	cmd.Dir = jsDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node interop.js: %v\n%s", err, stderr.String())
	}
	return out
}

type jsBox struct {
	SK        string `json:"sk,omitempty"`
	Content   string `json:"content"`
	Encryptor string `json:"encryptor"`
}

type jsKDF struct {
	Password string `json:"password"`
	Salt     string `json:"salt"`
}

type jsIssue struct {
	IssuerSeed  string `json:"issuer_seed"`
	UserID      string `json:"user_id"`
	PublicNotes string `json:"public_notes"`
	Plaintext   string `json:"plaintext"`
	Recipient   string `json:"recipient"`
}

type jsRequest struct {
	ToJS           []jsBox           `json:"to_js"`
	GoPub          string            `json:"go_pub"`
	Messages       []string          `json:"messages"`
	KDF            []jsKDF           `json:"kdf"`
	InvalidSalt    string            `json:"invalid_salt"`
	Issue          jsIssue           `json:"issue"`
	GoCredential   *vault.Credential `json:"go_credential"`
	GoCredentialSK string            `json:"go_credential_sk"`
}

type jsResponse struct {
	Opened                 []*string       `json:"opened"`
	Sealed                 []jsBox         `json:"sealed"`
	KDF                    []string        `json:"kdf"`
	KDFInvalidSaltRejected bool            `json:"kdf_invalid_salt_rejected"`
	Credential             json.RawMessage `json:"credential"`
	GoCredential           struct {
		PublicNotesOK bool    `json:"public_notes_ok"`
		BroaderOK     bool    `json:"broader_ok"`
		Plaintext     *string `json:"plaintext"`
		HashOK        bool    `json:"hash_ok"`
	} `json:"go_credential"`
	Versions map[string]string `json:"versions"`
}

var b64 = base64.StdEncoding.EncodeToString

func b64d(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func genKey(t *testing.T) *vault.PrivateKey {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestInteropTweetNaClScryptJS runs both directions against the real npm
// tweetnacl 1.0.3 and scrypt-js 3.0.1:
//   - boxes sealed by Go (SealTo, MakeCopy) open in tweetnacl, and a
//     tampered one does not;
//   - boxes sealed by tweetnacl the idOS way open in Go;
//   - scrypt-js derives the same keys as kdf.Derive(V0_1), NFKC included;
//   - a credential built by tweetnacl as the idOS issuer SDK builds it
//     parses, verifies and opens in Go, and Go's verifies and opens in JS.
func TestInteropTweetNaClScryptJS(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test runs Node; skipped with -short")
	}
	const userID = "9f51b3b2-4cbe-4c2b-8ea3-0b0c1b2f1a11"
	var req jsRequest

	// Go → JS.
	jsRecipient := genKey(t)
	goMsgs := [][]byte{{}, []byte("x"), []byte("hello from Go"), bytes.Repeat([]byte{0xa5}, 70000)}
	for _, m := range goMsgs {
		s, err := vault.SealTo(jsRecipient.Public(), m)
		if err != nil {
			t.Fatal(err)
		}
		req.ToJS = append(req.ToJS, jsBox{SK: b64(jsRecipient.Bytes()), Content: b64(s.Content), Encryptor: s.EncryptorPublicKey.String()})
	}
	// A tampered Go box: tweetnacl must refuse it.
	s, _ := vault.SealTo(jsRecipient.Public(), []byte("tampered"))
	s.Content[30] ^= 1
	req.ToJS = append(req.ToJS, jsBox{SK: b64(jsRecipient.Bytes()), Content: b64(s.Content), Encryptor: s.EncryptorPublicKey.String()})

	// A grant copy made in Go, for a grantee whose key JS holds.
	owner, grantee := genKey(t), genKey(t)
	plain := []byte(`{"credentialSubject":{"firstName":"Ada"}}`)
	orig, _ := vault.SealTo(owner.Public(), plain)
	dataID := "11111111-2222-4333-8444-555555555555"
	g, err := vault.NewGrant(userID, grantee.Public(), dataID, time.Time{}, vault.HashContent(plain))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := vault.MakeCopy(owner, orig, g)
	if err != nil {
		t.Fatal(err)
	}
	req.ToJS = append(req.ToJS, jsBox{SK: b64(grantee.Bytes()), Content: b64(cp.Content), Encryptor: cp.EncryptorPublicKey.String()})

	// JS → Go.
	goKey := genKey(t)
	req.GoPub = goKey.Public().String()
	jsMsgs := [][]byte{{}, []byte("y"), []byte("hello from tweetnacl"), bytes.Repeat([]byte{0x5a}, 70000)}
	for _, m := range jsMsgs {
		req.Messages = append(req.Messages, b64(m))
	}

	// KDF.
	req.KDF = []jsKDF{
		{"correct horse battery staple", userID},
		{"\ufb01re ｗａｌｌ", userID},                                       // ligature and fullwidth: NFKC changes them
		{"A\u030angstr\u00f6m", "0F0E0D0C-0B0A-4908-8706-050403020100"}, // combining ring; upper-case id
		{"密码🔑 ½", "00000000-0000-4000-8000-000000000000"},
	}
	req.InvalidSalt = "9f51b3b2-4cbe-3c2b-8ea3-0b0c1b2f1a11"

	// Credentials both ways.
	issuerSeed := bytes.Repeat([]byte{7}, 32)
	jsHolder := genKey(t)
	req.Issue = jsIssue{IssuerSeed: b64(issuerSeed), UserID: userID, PublicNotes: `{"id":"n1","type":"KYC","status":"approved","issuer":"ü"}`,
		Plaintext: b64(plain), Recipient: goKey.Public().String()}
	ik, err := vault.NewIssuerKey(issuerSeed)
	if err != nil {
		t.Fatal(err)
	}
	goCred, err := vault.Issue(ik, userID, `{"status":"approved ✓"}`, plain, jsHolder.Public())
	if err != nil {
		t.Fatal(err)
	}
	req.GoCredential = goCred
	req.GoCredentialSK = b64(jsHolder.Bytes())

	var res jsResponse
	if err := json.Unmarshal(runJS(t, req), &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("JS libraries: %v", res.Versions)
	if res.Versions["tweetnacl"] != "1.0.3" || res.Versions["scrypt-js"] != "3.0.1" {
		t.Fatalf("unexpected JS library versions %v", res.Versions)
	}

	// Go → JS results.
	if len(res.Opened) != len(goMsgs)+2 {
		t.Fatalf("JS opened %d boxes", len(res.Opened))
	}
	for i, m := range goMsgs {
		if res.Opened[i] == nil || !bytes.Equal(b64d(t, *res.Opened[i]), m) {
			t.Fatalf("tweetnacl did not open Go box %d", i)
		}
	}
	if res.Opened[len(goMsgs)] != nil {
		t.Fatal("tweetnacl opened a tampered Go box")
	}
	if p := res.Opened[len(goMsgs)+1]; p == nil || !bytes.Equal(b64d(t, *p), plain) {
		t.Fatal("tweetnacl did not open the grant copy made in Go")
	}

	// JS → Go results.
	if len(res.Sealed) != len(jsMsgs) {
		t.Fatalf("JS sealed %d boxes", len(res.Sealed))
	}
	for i, m := range jsMsgs {
		enc, err := vault.ParsePublicKeyBase64(res.Sealed[i].Encryptor)
		if err != nil {
			t.Fatal(err)
		}
		got, err := vault.Open(goKey, b64d(t, res.Sealed[i].Content), enc)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("Go did not open tweetnacl box %d: %v", i, err)
		}
	}

	// KDF results.
	for i, k := range req.KDF {
		key, err := kdf.Derive(kdf.V0_1, k.Password, k.Salt)
		if err != nil {
			t.Fatal(err)
		}
		if got := b64(key.Bytes()); got != res.KDF[i] {
			t.Fatalf("KDF case %d: Go %s, scrypt-js %s", i, got, res.KDF[i])
		}
	}
	if res.KDF[0] != "8iTwhZxrtQGKVV5OMthD5DxFc8c6B8h9MnU2Sh6JTTM=" {
		t.Fatalf("scrypt-js does not give idOS's known answer: %s", res.KDF[0])
	}
	if _, err := kdf.Derive(kdf.V0_1, "pw", req.InvalidSalt); err == nil || !res.KDFInvalidSaltRejected {
		t.Fatal("the two sides disagree on an invalid salt")
	}

	// The JS-built credential, in Go.
	jc, err := vault.ParseCredentialJSON(res.Credential)
	if err != nil {
		t.Fatalf("parsing tweetnacl credential: %v\n%s", err, res.Credential)
	}
	if err := jc.Verify(); err != nil {
		t.Fatalf("tweetnacl credential: %v", err)
	}
	if jc.IssuerAuthPublicKey != ik.Public() {
		t.Fatal("issuer key differs between nacl.sign.keyPair.fromSeed and Go")
	}
	if got, err := jc.Open(goKey); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("opening tweetnacl credential: %v", err)
	}
	// Re-encoding gives back what JS sent (field for field).
	var a, b map[string]any
	re, _ := json.Marshal(jc)
	_ = json.Unmarshal(res.Credential, &a)
	_ = json.Unmarshal(re, &b)
	if len(a) != len(b) {
		t.Fatalf("JSON round trip changed fields:\n%s\n%s", res.Credential, re)
	}
	for k, v := range a {
		if b[k] != v {
			t.Fatalf("JSON round trip changed %s", k)
		}
	}
	// The Go credential, in JS.
	gc := res.GoCredential
	if !gc.PublicNotesOK || !gc.BroaderOK || !gc.HashOK || gc.Plaintext == nil || !bytes.Equal(b64d(t, *gc.Plaintext), plain) {
		t.Fatalf("tweetnacl rejects the Go credential: %+v", gc)
	}
}
