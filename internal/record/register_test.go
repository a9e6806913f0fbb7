package record

import (
	"bytes"
	"errors"
	"testing"
)

// TestAccountRegisterOptionalFields: the registration key and the config
// seq round-trip alone and together, and any other order, repetition or
// marker is refused (one encoding per value).
func TestAccountRegisterOptionalFields(t *testing.T) {
	k, err := GenerateKey(P256)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	seq := uint64(7)
	base := AccountRegisterBody{Scope: "0123456789abcdef0123456789abcdef", Account: DerivedAccountID(pub), Time: 1}
	for _, b := range []AccountRegisterBody{base, {Scope: base.Scope, Account: base.Account, Time: 1, RegistrationKey: &pub}, {Scope: base.Scope, Account: base.Account, Time: 1, ConfigSeq: &seq}, {Scope: base.Scope, Account: base.Account, Time: 1, RegistrationKey: &pub, ConfigSeq: &seq}} {
		enc := b.Marshal()
		got, err := DecodeAccountRegister(enc)
		if err != nil || !bytes.Equal(got.Marshal(), enc) || (got.ConfigSeq == nil) != (b.ConfigSeq == nil) || (got.RegistrationKey == nil) != (b.RegistrationKey == nil) {
			t.Fatalf("round trip: %+v %v", got, err)
		}
	}
	plain := base.Marshal()
	var kw Writer
	pub.Encode(&kw)
	seqEnc := []byte{2, 0, 0, 0, 0, 0, 0, 0, 7}
	keyEnc := append([]byte{1}, kw.Bytes()...)
	for name, tail := range map[string][]byte{
		"seq then key": append(append([]byte{}, seqEnc...), keyEnc...),
		"key twice":    append(append([]byte{}, keyEnc...), keyEnc...),
		"seq twice":    append(append([]byte{}, seqEnc...), seqEnc...),
		"marker 3":     {3, 0},
		"marker 0":     {0},
	} {
		if _, err := DecodeAccountRegister(append(bytes.Clone(plain), tail...)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
