package chachapoly

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// FuzzAgainstXCrypto seals the input and opens it as a ciphertext too, and
// checks both against x/crypto's AEAD: the same bytes out, and the same
// verdict on a forged message.
func FuzzAgainstXCrypto(f *testing.F) {
	f.Add(byte(0), uint64(0), []byte{})
	f.Add(byte(1), uint64(1<<40), bytes.Repeat([]byte{0xff}, 1420))
	f.Add(byte(2), uint64(7), make([]byte, 385))
	f.Fuzz(func(t *testing.T, seed byte, counter uint64, msg []byte) {
		var key [32]byte
		for i := range key {
			key[i] = seed + byte(i)*31
		}
		ref, _ := chacha20poly1305.New(key[:])
		k := New(&key)

		want := ref.Seal(nil, nonce(counter), msg, nil)
		if got := k.Seal(nil, counter, msg); !bytes.Equal(got, want) {
			t.Fatalf("Seal of %d bytes differs from x/crypto", len(msg))
		}
		if got, err := k.Open(nil, counter, want); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("Open of a sealed message: %v", err)
		}
		_, refErr := ref.Open(nil, nonce(counter), msg, nil)
		if _, err := k.Open(nil, counter, msg); (err == nil) != (refErr == nil) {
			t.Fatalf("Open of %d arbitrary bytes: %v, x/crypto: %v", len(msg), err, refErr)
		}
	})
}
