package envelope

import (
	"context"
	"crypto/hpke"
	"encoding/binary"
	"fmt"
	"strconv"
	"testing"
	"time"
)

func BenchmarkHPKE(b *testing.B) {
	x25519, _ := hpke.NewKEM(KEMX25519)
	body := make([]byte, 1024)
	for _, kem := range []hpke.KEM{hpke.MLKEM768X25519(), x25519} {
		name := "xwing"
		if kem.ID() == KEMX25519 {
			name = "x25519"
		}
		k := newKey(b, kem)
		now := t0
		o, _ := newOpener(b, &now, k)
		req := Request{Method: "personal_sign", Scope: "s", Body: body}
		b.Run(name+"/seal-1KiB", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := SealRequest(k.PublicKey(), req, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/open+respond-1KiB", func(b *testing.B) {
			envs := make([][]byte, 0, 1024)
			i := 0
			for b.Loop() {
				if i == len(envs) {
					b.StopTimer()
					envs, i = envs[:0], 0
					for range cap(envs) {
						e, _, _ := SealRequest(k.PublicKey(), req, now)
						envs = append(envs, e)
					}
					b.StartTimer()
				}
				got, err := o.Open(context.Background(), envs[i])
				if err != nil {
					b.Fatal(err)
				}
				if _, err := got.SealResponse(body); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkCompat(b *testing.B) {
	k, _ := testRSA(b)
	now := t0
	o, _ := newCompatOpener(b, &now, k)
	fields := map[string][]byte{}
	for i := range 4 {
		fields["f"+strconv.Itoa(i)] = make([]byte, 256)
	}
	req := CompatRequest{Method: "createScope", Fields: fields}
	b.Run("seal-4x256B", func(b *testing.B) {
		for b.Loop() {
			if _, _, _, err := SealCompat(&k.PublicKey, req, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open-4x256B", func(b *testing.B) {
		type sealed struct {
			h    string
			body map[string]string
		}
		var batch []sealed
		i := 0
		for b.Loop() {
			if i == len(batch) {
				b.StopTimer()
				batch, i = batch[:0], 0
				for range 256 {
					h, body, _, _ := SealCompat(&k.PublicKey, req, now.Add(-time.Second))
					batch = append(batch, sealed{h, body})
				}
				b.StartTimer()
			}
			if _, err := o.Open(context.Background(), batch[i].h, batch[i].body); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkMemoryNonceStore records nonces in a store kept full (Max
// 1<<20, the default, from 4096 sources), so every Seen also forgets the
// earliest expiry: the flood case.
func BenchmarkMemoryNonceStore(b *testing.B) {
	now := t0
	s := &MemoryNonceStore{Now: func() time.Time { return now }}
	ctxs := make([]context.Context, 4096)
	for i := range ctxs {
		ctxs[i] = WithSource(context.Background(), fmt.Sprintf("src-%d", i))
	}
	nonce := make([]byte, 16)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint64(nonce, uint64(i))
		if _, err := s.Seen(ctxs[i%len(ctxs)], nonce, now.Add(time.Minute+time.Duration(i)*time.Microsecond)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
