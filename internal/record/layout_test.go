package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"testing"
)

// These tests pin the encoding documented in the package comment: the
// expected bytes are assembled here from that description (u8, big-endian
// u32/u64, u32-length-prefixed strings and byte strings, u32-counted
// lists), independently of Writer, and must be what Marshal writes and
// decode back to a value that re-encodes to them.

type layout []byte

func (l layout) u8(v byte) layout    { return append(l, v) }
func (l layout) u32(v uint32) layout { return binary.BigEndian.AppendUint32(l, v) }
func (l layout) u64(v uint64) layout { return binary.BigEndian.AppendUint64(l, v) }
func (l layout) raw(b []byte) layout { return append(l, b...) }
func (l layout) lp(b []byte) layout  { return l.u32(uint32(len(b))).raw(b) }
func (l layout) str(s string) layout { return l.lp([]byte(s)) }

func testEdKey(seed byte) PublicKey {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return PublicKey{Alg: Ed25519, Key: priv.Public().(ed25519.PublicKey)}
}

func TestScopeRecordLayout(t *testing.T) {
	k1, k2 := testEdKey(1), testEdKey(2)
	if bytes.Compare(append([]byte{2, 0, 0, 0, 32}, k1.Key...), append([]byte{2, 0, 0, 0, 32}, k2.Key...)) > 0 {
		k1, k2 = k2, k1 // AuthSignatures lists its signers in ascending order
	}
	body := ScopeCreateBody{Config: ScopeConfig{
		RPID: "example.com", Origins: []string{"https://a.example.com", "https://b.example.com"},
		Mode: ModeHybrid, SessionTTL: 3600, DevKeys: []PublicKey{k1, k2}, DevQuorum: 2,
	}}
	body.Nonce[0], body.Nonce[15] = 0xaa, 0xbb
	wantBody := layout{}.raw(body.Nonce[:]).str("example.com").
		u32(2).str("https://a.example.com").str("https://b.example.com").
		u8(uint8(ModeHybrid)).u32(3600).
		u32(2).u8(uint8(Ed25519)).lp(k1.Key).u8(uint8(Ed25519)).lp(k2.Key).
		u8(flagDevQuorum).u8(2)
	if got := body.Marshal(); !bytes.Equal(got, wantBody) {
		t.Fatalf("scope create body\n got %x\nwant %x", got, []byte(wantBody))
	}
	back, err := DecodeScopeCreate(wantBody)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Marshal(), wantBody) {
		t.Fatal("decoded body re-encodes differently")
	}

	sig1, sig2 := bytes.Repeat([]byte{1}, 64), bytes.Repeat([]byte{2}, 64)
	r := Record{Kind: ScopeCreate, Body: wantBody, Auth: Auth{Kind: AuthSignatures, Sigs: []Signature{
		{Signer: k1, Sig: sig1}, {Signer: k2, Sig: sig2},
	}}}
	wantRecord := layout{}.u8(Version).u8(uint8(ScopeCreate)).lp(wantBody).u8(uint8(AuthSignatures)).
		u32(2).u8(uint8(Ed25519)).lp(k1.Key).lp(sig1).u8(uint8(Ed25519)).lp(k2.Key).lp(sig2)
	if got := r.Marshal(); !bytes.Equal(got, wantRecord) {
		t.Fatalf("record\n got %x\nwant %x", got, []byte(wantRecord))
	}
	rb, err := Unmarshal(wantRecord)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rb.Marshal(), wantRecord) {
		t.Fatal("decoded record re-encodes differently")
	}
	wantMsg := layout{}.str("keymesh/record/v1").u8(uint8(ScopeCreate)).lp(wantBody)
	if got := SigningMessage(ScopeCreate, wantBody); !bytes.Equal(got, wantMsg) {
		t.Fatalf("signing message\n got %x\nwant %x", got, []byte(wantMsg))
	}
}

func TestApprovalLayout(t *testing.T) {
	a := Approval{Scope: "0123456789abcdef0123456789abcdef", Method: "eth_sign", Expiry: 1_800_000_000}
	a.Hash[0], a.Nonce[1] = 7, 9
	want := layout{}.str(a.Scope).str("").str("eth_sign").raw(a.Hash[:]).raw(a.Nonce[:]).u64(1_800_000_000)
	if got := a.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("approval\n got %x\nwant %x", got, []byte(want))
	}
	back, err := DecodeApproval(want)
	if err != nil {
		t.Fatal(err)
	}
	if *back != a {
		t.Fatalf("decoded %+v", back)
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	k := testEdKey(1)
	body := ScopeCreateBody{Config: ScopeConfig{RPID: "example.com", Origins: []string{"https://example.com"},
		Mode: ModeUser, SessionTTL: 3600, DevKeys: []PublicKey{k}}}
	enc := (&Record{Kind: ScopeCreate, Body: body.Marshal(), Auth: Auth{Kind: AuthSignature, Signer: k, Sig: make([]byte, 64)}}).Marshal()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		r, err := Unmarshal(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeScopeCreate(r.Body); err != nil {
			b.Fatal(err)
		}
	}
}
