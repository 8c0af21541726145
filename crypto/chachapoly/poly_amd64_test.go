//go:build !purego

package chachapoly

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/poly1305" //lint:ignore SA1019 the reference to check against
)

// TestPolySum compares the eight-lane and the scalar Poly1305 with
// x/crypto's over every ciphertext length up to past two packets.
func TestPolySum(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 IFMA on this CPU")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ct := make([]byte, 2100)
	for n := 0; n <= len(ct); n++ {
		var key [32]byte
		fill(rng, key[:])
		if n%7 == 0 { // r with every clamped bit set, s all ones
			for i := range key {
				key[i] = 0xff
			}
		}
		fill(rng, ct[:n])
		if n%5 == 0 { // the largest limbs the lazy carries must absorb
			for i := range ct[:n] {
				ct[i] = 0xff
			}
		}
		var want [16]byte
		poly1305.Sum(&want, aeadInput(ct[:n]), &key)
		for name, sum := range map[string]func(*[16]byte, *[32]byte, []byte){
			"lanes": polySumLanes, "scalar": polySumScalar,
		} {
			var got [16]byte
			sum(&got, &key, ct[:n])
			if got != want {
				t.Fatalf("%s, len %d: got %x, want %x", name, n, got, want)
			}
		}
	}
}

// aeadInput is what RFC 8439 MACs with no additional data.
func aeadInput(ct []byte) []byte {
	padded := (len(ct) + 15) / 16 * 16
	in := make([]byte, padded+16)
	copy(in, ct)
	binary.LittleEndian.PutUint64(in[padded+8:], uint64(len(ct)))
	return in
}

func BenchmarkPolySum(b *testing.B) {
	if !useAVX512 {
		b.Skip("no AVX-512 IFMA on this CPU")
	}
	for _, n := range []int{64, 128, 192, 256, 320, 1420} {
		for name, sum := range map[string]func(*[16]byte, *[32]byte, []byte){
			"lanes": polySumLanes, "scalar": polySumScalar,
		} {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				var key [32]byte
				var tag [16]byte
				ct := make([]byte, n)
				b.SetBytes(int64(n))
				for b.Loop() {
					sum(&tag, &key, ct)
				}
			})
		}
	}
}
