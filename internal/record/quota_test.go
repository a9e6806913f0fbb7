package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestScopeQuotaEncoding: a config without quotas encodes as before (old
// records and scope ids keep theirs); quotas follow the flags byte (and the
// quorum byte) as four u32; an all-zero quota block, a short one and
// trailing bytes are refused.
func TestScopeQuotaEncoding(t *testing.T) {
	k1, k2 := mustKey(t, P256), mustKey(t, Ed25519)
	c := testConfig(t, k1, k2)
	plain := c.Marshal()
	q := ScopeQuota{KeygensInFlight: 2, SignsPerSecond: 50, MaxAccounts: 1000, MaxKeys: 7}
	quota := func(q ScopeQuota) []byte {
		var b []byte
		for _, v := range []uint32{q.KeygensInFlight, q.SignsPerSecond, q.MaxAccounts, q.MaxKeys} {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return b
	}
	c.Quota = q
	enc := c.Marshal()
	if want := append(append(bytes.Clone(plain), flagQuota), quota(q)...); !bytes.Equal(enc, want) {
		t.Fatalf("quota encoding: % x", enc[len(plain):])
	}
	got, err := DecodeScopeConfig(enc)
	if err != nil || got.Quota != q {
		t.Fatalf("round trip: %+v %v", got.Quota, err)
	}
	c.DevQuorum, c.AllowRawDigest = 2, true
	got, err = DecodeScopeConfig(c.Marshal())
	if err != nil || got.Quota != q || got.DevQuorum != 2 || !got.AllowRawDigest || !bytes.Equal(got.Marshal(), c.Marshal()) {
		t.Fatalf("all flags: %+v %v", got, err)
	}
	// One field set, the others default.
	c = testConfig(t, k1, k2)
	c.Quota = ScopeQuota{MaxKeys: 1}
	if got, err := DecodeScopeConfig(c.Marshal()); err != nil || got.Quota != c.Quota {
		t.Fatalf("one field: %+v %v", got.Quota, err)
	}
	for name, bad := range map[string][]byte{
		"all-zero quota": append(append(bytes.Clone(plain), flagQuota), quota(ScopeQuota{})...),
		"short quota":    append(append(bytes.Clone(plain), flagQuota), quota(q)[:12]...),
		"trailing byte":  append(append(append(bytes.Clone(plain), flagQuota), quota(q)...), 0),
		"unknown flag":   append(bytes.Clone(plain), 1<<3),
	} {
		if _, err := DecodeScopeConfig(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
