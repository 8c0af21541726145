package chachapoly

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"sync"
	"unsafe"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrOpen is returned by Open for a message that does not authenticate.
var ErrOpen = errors.New("chachapoly: message authentication failed")

// Key seals and opens under one key. It is immutable after New, so it is
// safe to use from many goroutines at once.
type Key struct {
	// The constants and the key: the first 12 words of every block's input.
	state [16]uint32
	// x/crypto's AEAD, used where the vector kernels do not run.
	aead cipher.AEAD
}

// New returns the Key for key.
func New(key *[chacha20poly1305.KeySize]byte) *Key {
	k := &Key{}
	if !useAVX512 {
		// New fails only for a key of the wrong length; ours is an array.
		k.aead, _ = chacha20poly1305.New(key[:])
		return k
	}
	k.state[0], k.state[1], k.state[2], k.state[3] = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574
	for i := range 8 {
		k.state[4+i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	return k
}

// Seal appends the encryption of plaintext with the nonce for counter to
// dst and returns the result, len(plaintext)+TagSize bytes longer. To seal
// in place pass dst = plaintext[:0] with TagSize bytes of spare capacity;
// any other overlap of dst and plaintext panics. It does not allocate
// when dst has the capacity.
func (k *Key) Seal(dst []byte, counter uint64, plaintext []byte) []byte {
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	if inexactOverlap(out, plaintext) {
		panic("chachapoly: invalid buffer overlap")
	}
	if k.aead != nil {
		n := getNonce(counter)
		k.aead.Seal(out[:0], n[:], plaintext, nil)
		noncePool.Put(n)
		return ret
	}
	k.seal(out, counter, plaintext)
	return ret
}

// Open appends the decryption of ciphertext (which ends in its tag) with
// the nonce for counter to dst and returns the result, or ErrOpen if it
// does not authenticate, which includes a ciphertext shorter than a tag.
// To open in place pass dst = ciphertext[:0]. It does not allocate when
// dst has the capacity.
func (k *Key) Open(dst []byte, counter uint64, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < TagSize {
		return nil, ErrOpen
	}
	ret, out := sliceForAppend(dst, len(ciphertext)-TagSize)
	if inexactOverlap(out, ciphertext) {
		panic("chachapoly: invalid buffer overlap")
	}
	if k.aead != nil {
		n := getNonce(counter)
		_, err := k.aead.Open(out[:0], n[:], ciphertext, nil)
		noncePool.Put(n)
		if err != nil {
			return nil, ErrOpen
		}
		return ret, nil
	}
	if !k.open(out, counter, ciphertext) {
		return nil, ErrOpen
	}
	return ret, nil
}

// The AEAD interface makes its arguments escape, so a nonce array on the
// stack would cost an allocation per packet. The pool keeps one per P.
var noncePool = sync.Pool{New: func() any { return new([chacha20poly1305.NonceSize]byte) }}

// getNonce returns the nonce for counter: four zero bytes, then the
// counter in little endian, as WireGuard specifies.
func getNonce(counter uint64) *[chacha20poly1305.NonceSize]byte {
	n := noncePool.Get().(*[chacha20poly1305.NonceSize]byte)
	binary.LittleEndian.PutUint32(n[:4], 0)
	binary.LittleEndian.PutUint64(n[4:], counter)
	return n
}

// sliceForAppend extends in by n bytes, reallocating only if it must, and
// returns the whole slice and the n new bytes.
func sliceForAppend(in []byte, n int) (whole, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		whole = in[:total]
	} else {
		whole = make([]byte, total)
		copy(whole, in)
	}
	return whole, whole[len(in):]
}

// inexactOverlap reports whether x and y share memory other than by
// starting at the same byte, which in-place sealing is.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	x0, y0 := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	return x0 < y0+uintptr(len(y)) && y0 < x0+uintptr(len(x))
}
