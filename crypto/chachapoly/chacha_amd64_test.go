//go:build !purego

package chachapoly

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20"
)

func requireAVX512(tb testing.TB) {
	tb.Helper()
	if !useAVX512 {
		tb.Skip("no AVX-512 IFMA on this CPU")
	}
}

// newState builds the RFC 8439 initial state for key, nonce and counter.
func newState(key, nonce []byte, counter uint32) *[16]uint32 {
	var s [16]uint32
	s[0], s[1], s[2], s[3] = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574
	for i := range 8 {
		s[4+i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	s[12] = counter
	for i := range 3 {
		s[13+i] = binary.LittleEndian.Uint32(nonce[4*i:])
	}
	return &s
}

func randBytes(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// chachaXORSlice wraps the kernel, passing a valid pointer even when empty.
func chachaXORSlice(dst, src []byte, st *[16]uint32) {
	var dp, sp *byte
	var scratch byte
	dp, sp = &scratch, &scratch
	if len(src) > 0 {
		dp, sp = &dst[0], &src[0]
	}
	chachaXOR(dp, sp, len(src)/256, st)
}

func TestChachaXOR(t *testing.T) {
	requireAVX512(t)
	for _, counter := range []uint32{0, 1, 77, 1000} {
		for sets := 0; sets <= 13; sets++ {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("ctr=%d/sets=%d/inplace=%v", counter, sets, inPlace)
				t.Run(name, func(t *testing.T) {
					key := randBytes(t, chacha20.KeySize)
					nonce := randBytes(t, chacha20.NonceSize)
					src := randBytes(t, sets*256)

					want := make([]byte, len(src))
					c, err := chacha20.NewUnauthenticatedCipher(key, nonce)
					if err != nil {
						t.Fatal(err)
					}
					c.SetCounter(counter)
					c.XORKeyStream(want, src)

					state := newState(key, nonce, counter)
					orig := *state
					// Guard bytes around dst catch out-of-bounds stores.
					buf := randBytes(t, len(src)+128)
					guard := bytes.Clone(buf)
					dst := buf[64 : 64+len(src)]
					if inPlace {
						copy(dst, src)
						chachaXORSlice(dst, dst, state)
					} else {
						chachaXORSlice(dst, src, state)
					}
					if !bytes.Equal(dst, want) {
						for i := range dst {
							if dst[i] != want[i] {
								t.Fatalf("mismatch at byte %d (block %d)", i, i/64)
							}
						}
					}
					if !bytes.Equal(buf[:64], guard[:64]) || !bytes.Equal(buf[64+len(src):], guard[64+len(src):]) {
						t.Fatal("wrote outside dst")
					}
					if *state != orig {
						t.Fatal("state was modified")
					}
				})
			}
		}
	}
}

// benchSets covers WireGuard packet sizes: 1-3 sets for small packets, 6
// for a full-MTU packet plus the Poly1305 key block.
var benchSets = []int{1, 2, 3, 4, 6, 8}

func BenchmarkChachaXOR(b *testing.B) {
	requireAVX512(b)
	for _, sets := range benchSets {
		b.Run(fmt.Sprintf("sets=%d", sets), func(b *testing.B) {
			state := newState(make([]byte, 32), make([]byte, 12), 1)
			buf := make([]byte, sets*256)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				chachaXOR(&buf[0], &buf[0], sets, state)
			}
		})
	}
}

func BenchmarkXCryptoChacha20(b *testing.B) {
	for _, sets := range benchSets {
		b.Run(fmt.Sprintf("sets=%d", sets), func(b *testing.B) {
			c, err := chacha20.NewUnauthenticatedCipher(make([]byte, 32), make([]byte, 12))
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, sets*256)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				c.XORKeyStream(buf, buf)
			}
		})
	}
}
