package vault

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

type grantFixture struct {
	owner, grantee *PrivateKey
	plain          []byte
	orig           Sealed
	g              *Grant
}

func newGrantFixture(t *testing.T, lock time.Time) grantFixture {
	t.Helper()
	f := grantFixture{owner: mustKey(t), grantee: mustKey(t), plain: []byte(`{"passport":"X123"}`)}
	var err error
	if f.orig, err = SealTo(f.owner.Public(), f.plain); err != nil {
		t.Fatal(err)
	}
	if f.g, err = NewGrant(testUserID, f.grantee.Public(), "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", lock, HashContent(f.plain)); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestGrantCopy(t *testing.T) {
	f := newGrantFixture(t, time.Time{})
	cp, err := MakeCopy(f.owner, f.orig, f.g)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenCopy(f.grantee, cp, f.g)
	if err != nil || !bytes.Equal(got, f.plain) {
		t.Fatalf("grantee cannot read the copy: %v", err)
	}
	// Fresh ephemeral key and nonce: nothing shared with the original.
	if cp.EncryptorPublicKey == f.orig.EncryptorPublicKey || bytes.Equal(cp.Content[:NonceSize], f.orig.Content[:NonceSize]) {
		t.Fatal("copy reuses the original's encryptor key or nonce")
	}
	// The owner cannot open the copy, nor the grantee the original.
	if _, err := cp.Open(f.owner); !errors.Is(err, ErrOpen) {
		t.Fatal("owner opened the grantee's copy")
	}
	if _, err := f.orig.Open(f.grantee); !errors.Is(err, ErrOpen) {
		t.Fatal("grantee opened the original")
	}
}

// A copy is refused when the plaintext is not the one the grant names:
// when making it, and when the grantee opens it.
func TestGrantContentHashMismatch(t *testing.T) {
	f := newGrantFixture(t, time.Time{})
	g := *f.g
	g.ContentHash = HashContent([]byte("something else"))
	_, err := MakeCopy(f.owner, f.orig, &g)
	if !errors.Is(err, ErrContentHash) {
		t.Fatalf("MakeCopy: %v, want ErrContentHash", err)
	}
	if strings.Contains(err.Error(), "X123") || strings.Contains(err.Error(), HashContent(f.plain).String()) {
		t.Fatalf("error leaks the plaintext or its hash: %v", err)
	}
	// A copy of other data, sealed to the grantee, is refused on opening.
	wrong, _ := SealTo(f.grantee.Public(), []byte(`{"passport":"X124"}`))
	if _, err := OpenCopy(f.grantee, wrong, f.g); !errors.Is(err, ErrContentHash) {
		t.Fatalf("OpenCopy: %v, want ErrContentHash", err)
	}
	// A wrong owner key does not open the original.
	if _, err := MakeCopy(f.grantee, f.orig, f.g); !errors.Is(err, ErrOpen) {
		t.Fatalf("MakeCopy with the wrong key: %v", err)
	}
}

func TestGrantTimelock(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f := newGrantFixture(t, now.Add(24*time.Hour))
	if err := f.g.Revocable(now); !errors.Is(err, ErrLocked) {
		t.Fatalf("revoked a locked grant: %v", err)
	}
	if err := f.g.Revocable(now.Add(24*time.Hour - time.Second)); !errors.Is(err, ErrLocked) {
		t.Fatalf("revoked one second early: %v", err)
	}
	if err := f.g.Revocable(now.Add(24 * time.Hour)); err != nil {
		t.Fatalf("at the timelock: %v", err)
	}
	free := newGrantFixture(t, time.Time{})
	if free.g.LockedUntil != 0 || free.g.Revocable(now) != nil {
		t.Fatal("grant without timelock is not revocable")
	}
}

func TestGrantBinary(t *testing.T) {
	f := newGrantFixture(t, time.Unix(1_800_000_000, 0))
	b, err := f.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Grant
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if back != *f.g {
		t.Fatal("round trip changed the grant")
	}
	for _, bad := range [][]byte{append(bytes.Clone(b), 0), b[:len(b)-1], {}} {
		var x Grant
		if err := x.UnmarshalBinary(bad); err == nil {
			t.Errorf("accepted %d bytes", len(bad))
		}
	}
	g := *f.g
	g.CopyID = g.DataID
	if _, err := g.MarshalBinary(); err == nil {
		t.Fatal("copy id equal to data id accepted")
	}
	g = *f.g
	g.ContentHash = ContentHash{}
	if _, err := g.MarshalBinary(); err == nil {
		t.Fatal("grant without content hash accepted")
	}
	if _, err := NewGrant("not-a-user", f.grantee.Public(), g.DataID, time.Time{}, HashContent(nil)); !errors.Is(err, ErrInvalidUserID) {
		t.Fatalf("bad owner: %v", err)
	}
}
