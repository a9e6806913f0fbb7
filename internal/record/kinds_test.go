package record

import (
	"errors"
	"slices"
	"testing"
)

// TestKindsOwnTheirRecords: a service's Kinds decode its records and no
// other kind's, auth's Unmarshal decodes none of a service's kinds, and
// PeekKind reads the kind of any record without decoding it.
func TestKindsOwnTheirRecords(t *testing.T) {
	k := mustKey(t, Ed25519)
	const demo Kind = 200
	mine := Kinds{demo: "demo.add"}
	r, err := Sign(demo, []byte("body"), k)
	if err != nil {
		t.Fatal(err)
	}
	enc := r.Marshal()
	if got, err := mine.Unmarshal(enc); err != nil || got.Kind != demo || got.VerifySignature() != nil {
		t.Fatalf("own kind: %+v %v", got, err)
	}
	if _, err := Unmarshal(enc); !errors.Is(err, ErrMalformed) {
		t.Fatalf("auth's Unmarshal decoded a demo record: %v", err)
	}
	auth, _ := Sign(ScopeCreate, (&ScopeCreateBody{Config: testConfig(t, k)}).Marshal(), k)
	if _, err := mine.Unmarshal(auth.Marshal()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a demo decoder decoded auth's record: %v", err)
	}
	if _, err := (Kinds{0: "zero"}).Unmarshal(append([]byte{Version, 0}, enc[2:]...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("kind 0 decoded: %v", err)
	}
	if got, err := PeekKind(enc); err != nil || got != demo {
		t.Fatalf("PeekKind: %v %v", got, err)
	}
	for name, b := range map[string][]byte{"empty": nil, "one byte": {Version}, "version": {2, 200}, "kind 0": {Version, 0}} {
		if _, err := PeekKind(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("PeekKind %s: %v", name, err)
		}
	}
	if ks := AuthKinds(); !slices.Equal(ks, []Kind{ScopeCreate, ScopeUpdate, AccountRegister, CredentialAdd, CredentialRevoke, SessionCreate, SessionRevoke, AccountMode}) {
		t.Fatalf("AuthKinds: %v", ks)
	}
}
