package vault

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"
)

// These tests pin the binary layouts documented on each MarshalBinary: the
// expected bytes are assembled here field by field from the documented
// layout, independently of the encoder, and must equal what MarshalBinary
// writes and decode back to the same value.

// layout assembles an expected encoding: u8, u64, fixed bytes and
// u32-length-prefixed strings, all big-endian.
type layout []byte

func (l layout) u8(v byte) layout    { return append(l, v) }
func (l layout) u64(v uint64) layout { return binary.BigEndian.AppendUint64(l, v) }
func (l layout) raw(b []byte) layout { return append(l, b...) }
func (l layout) lp(b []byte) layout {
	return append(binary.BigEndian.AppendUint32(l, uint32(len(b))), b...)
}
func (l layout) str(s string) layout { return l.lp([]byte(s)) }

func checkLayout(t *testing.T, got []byte, err error, want layout) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from the documented layout:\n got %x\nwant %x", got, []byte(want))
	}
}

func TestCredentialLayout(t *testing.T) {
	c, err := Issue(mustIssuer(t), testUserID, "notes", []byte("data"), mustKey(t).Public())
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.MarshalBinary()
	want := layout{'C', 1}.str(c.ID).str(c.UserID).str(c.PublicNotes).lp(c.Content).
		raw(c.EncryptorPublicKey[:]).raw(c.IssuerAuthPublicKey[:]).
		raw(c.PublicNotesSignature[:]).raw(c.BroaderSignature[:]).raw(c.ContentHash[:])
	checkLayout(t, b, err, want)
	var back Credential
	if err := back.UnmarshalBinary(want); err != nil {
		t.Fatal(err)
	}
	if b2, _ := back.MarshalBinary(); !bytes.Equal(b2, want) {
		t.Fatal("decoded credential re-encodes differently")
	}
}

func TestGrantLayout(t *testing.T) {
	g := newGrantFixture(t, time.Unix(1_800_000_000, 0)).g
	b, err := g.MarshalBinary()
	want := layout{'G', 1}.str(g.ID).str(g.OwnerUserID).raw(g.GranteeKey[:]).
		str(g.DataID).str(g.CopyID).u64(1_800_000_000).raw(g.ContentHash[:])
	checkLayout(t, b, err, want)
	var back Grant
	if err := back.UnmarshalBinary(want); err != nil || back != *g {
		t.Fatalf("decoding the documented layout: %v", err)
	}
}

func TestDelegatedGrantLayout(t *testing.T) {
	d, key := testDWG(t)
	sig, err := SignDelegatedGrant(d, key)
	if err != nil {
		t.Fatal(err)
	}
	s := SignedDelegatedGrant{Grant: *d, Signature: [65]byte(sig)}
	b, err := s.MarshalBinary()
	want := layout{'D', 1}.str(d.ID).str(d.Owner).str(d.Grantee).raw(d.IssuerPublicKey[:]).
		u64(uint64(d.AccessGrantTimelock.Unix())).u64(uint64(d.NotBefore.Unix())).u64(uint64(d.NotAfter.Unix())).
		raw(sig)
	checkLayout(t, b, err, want)
	var back SignedDelegatedGrant
	if err := back.UnmarshalBinary(want); err != nil {
		t.Fatal(err)
	}
	if b2, _ := back.MarshalBinary(); !bytes.Equal(b2, want) {
		t.Fatal("decoded grant re-encodes differently")
	}
}
