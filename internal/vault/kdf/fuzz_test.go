package kdf

import (
	"strings"
	"testing"
)

func FuzzParseVersion(f *testing.F) {
	f.Add("0.1")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("ParseVersion(%q) = %v", s, v)
		}
		if _, err := v.Params(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDerive runs the cheap V0 with any password and salt: it must not
// panic, must agree with vault.ValidUserID on the salt, and its errors must
// not repeat the password.
func FuzzDerive(f *testing.F) {
	f.Add("correct horse battery staple", userID)
	f.Fuzz(func(t *testing.T, pw, salt string) {
		k, err := Derive(V0, pw, salt)
		if err != nil {
			if len(pw) >= 4 && strings.Contains(err.Error(), pw) {
				t.Fatalf("error repeats the password: %v", err)
			}
			return
		}
		k2, err := Derive(V0, pw, salt)
		if err != nil || !k.Equal(k2) {
			t.Fatal("not deterministic")
		}
	})
}
