//go:build !purego

package chachapoly

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/poly1305" //lint:ignore SA1019 the reference to check against
)

// TestPolySum compares the eight-lane Poly1305 with x/crypto's over every
// ciphertext length up to a little past two packets' worth of chunks.
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
		var got, want [16]byte
		polySum(&got, &key, ct[:n])
		poly1305.Sum(&want, aeadInput(ct[:n]), &key)
		if got != want {
			t.Fatalf("len %d: got %x, want %x", n, got, want)
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
