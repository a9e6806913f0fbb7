package attest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keymesh/keymesh/internal/enclave"
)

func releaseKeys(n int) ([]ed25519.PrivateKey, []ed25519.PublicKey) {
	var privs []ed25519.PrivateKey
	var pubs []ed25519.PublicKey
	for range n {
		pub, priv, _ := ed25519.GenerateKey(nil)
		privs, pubs = append(privs, priv), append(pubs, pub)
	}
	return privs, pubs
}

// TestVerifyRelease: t distinct approvals of the roster count; the
// statement binds cluster, platform, measurement and validity; the
// signature binds the domain (a signature over the bare statement, as
// another protocol might make, does not count).
func TestVerifyRelease(t *testing.T) {
	privs, pubs := releaseKeys(3)
	var m enclave.Measurement
	m[0] = 9
	now := time.Now()
	r := Roster{ClusterID: "c", Platform: enclave.PlatformSim, Threshold: 2, Identities: pubs}
	sign := func(i int, st Release) *Approval {
		a, err := SignRelease(&st, privs[i])
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	good := Release{ClusterID: "c", Platform: enclave.PlatformSim, Measurement: m, Issued: now, Expires: now.Add(time.Hour)}
	a0, a1 := sign(0, good), sign(1, good)
	if err := VerifyRelease([]*Approval{a0, a1}, r, m, now); err != nil {
		t.Fatal(err)
	}
	otherPlatform := good
	otherPlatform.Platform = "sev-snp"
	tooLong := good
	tooLong.Expires = now.Add(MaxReleaseValidity + time.Hour)
	future := good
	future.Issued, future.Expires = now.Add(time.Hour), now.Add(2*time.Hour)
	bare := *a1
	bare.Signature = ed25519.Sign(privs[1], a1.Statement)
	for name, tc := range map[string]struct {
		as  []*Approval
		why string
	}{
		"other platform": {[]*Approval{a0, sign(1, otherPlatform)}, `for platform "sev-snp"`},
		"too long":       {[]*Approval{a0, sign(1, tooLong)}, "more than"},
		"issued later":   {[]*Approval{a0, sign(1, future)}, "in the future"},
		"no domain":      {[]*Approval{a0, &bare}, "bad signature"},
		"nil":            {[]*Approval{a0, nil}, "missing"},
		"identity swap":  {[]*Approval{a0, {Statement: a1.Statement, Identity: pubs[2], Signature: a1.Signature}}, "bad signature"},
	} {
		if err := VerifyRelease(tc.as, r, m, now); !errors.Is(err, ErrRelease) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := VerifyRelease([]*Approval{a0, a1}, Roster{ClusterID: "c", Threshold: 4, Identities: pubs}, m, now); !errors.Is(err, ErrRelease) {
		t.Errorf("threshold above n: %v", err)
	}
	// The approval file round-trips and is decoded strictly.
	b, _ := json.Marshal(a0)
	if got, err := ParseApproval(b); err != nil || !bytes.Equal(got.Signature, a0.Signature) {
		t.Fatalf("ParseApproval: %v", err)
	}
	for _, bad := range []string{`{}`, string(b) + `{}`, strings.Replace(string(b), `"statement"`, `"statement2"`, 1)} {
		if _, err := ParseApproval([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseApproval(%.40q): %v", bad, err)
		}
	}
}

// FuzzRelease: decoding never panics, and whatever decodes re-encodes to
// the same bytes (one encoding per statement).
func FuzzRelease(f *testing.F) {
	st, _ := (&Release{ClusterID: "c-1", Platform: "sim", Issued: time.UnixMilli(1), Expires: time.UnixMilli(2)}).MarshalBinary()
	f.Add(st)
	f.Add([]byte(releaseMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Release
		if r.UnmarshalBinary(data) != nil {
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("not canonical: %x vs %x (%v)", data, again, err)
		}
	})
}

// FuzzParseApproval: the approval file decoder never panics.
func FuzzParseApproval(f *testing.F) {
	f.Add([]byte(`{"statement":"","identity":"","signature":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ParseApproval(data)
	})
}
