//go:build !purego

package chachapoly

import (
	"crypto/subtle"
)

// The keystream is made in runs of up to keystreamSets sets of four
// blocks into a buffer on the stack, then XORed into the message. One
// kernel call per packet keeps its sets interleaved (the kernel runs six
// at once, so a full-MTU packet is one call); the first block is the
// Poly1305 key, and the last set may be partly used.
const keystreamSets = 6

// chachaXOR XORs sets*256 bytes of src with the ChaCha20 keystream from
// block st[12] on and writes them to dst. A set is four 64-byte blocks.
// It reads *st only; dst may be src, but must not otherwise overlap it.
//
//go:noescape
func chachaXOR(dst, src *byte, sets int, st *[16]uint32)

// zeros is what the kernel XORs to produce bare keystream.
var zeros [keystreamSets * 256]byte

// keystream is the ChaCha20 keystream of one message, made a run at a
// time into buf.
type keystream struct {
	st   [16]uint32 // the input of the run's first block
	buf  [keystreamSets * 256]byte
	sets int // in buf
}

// start makes the first run for a message of n bytes with counter: block
// 0, whose first 32 bytes are the Poly1305 key, and the blocks after it.
func (ks *keystream) start(k *Key, counter uint64, n int) {
	ks.st = k.state // words 12 and 13, the block counter and the nonce's zero word, are 0
	ks.st[14] = uint32(counter)
	ks.st[15] = uint32(counter >> 32)
	ks.sets = min((n+64+255)/256, keystreamSets)
	chachaXOR(&ks.buf[0], &zeros[0], ks.sets, &ks.st)
}

// polyKey returns the Poly1305 key; the first run must still be in buf.
func (ks *keystream) polyKey() *[32]byte { return (*[32]byte)(ks.buf[:32]) }

// xor XORs src with the keystream from block 1 on into dst, making more
// runs as a long message needs them.
func (ks *keystream) xor(dst, src []byte) {
	n := subtle.XORBytes(dst, src, ks.buf[64:ks.sets*256])
	for n < len(src) {
		dst, src = dst[n:], src[n:]
		ks.st[12] += uint32(ks.sets * 4)
		ks.sets = min((len(src)+255)/256, keystreamSets)
		chachaXOR(&ks.buf[0], &zeros[0], ks.sets, &ks.st)
		n = subtle.XORBytes(dst, src, ks.buf[:ks.sets*256])
	}
}

// seal writes the ciphertext of plaintext and its tag to out.
func (k *Key) seal(out []byte, counter uint64, plaintext []byte) {
	var ks keystream
	ks.start(k, counter, len(plaintext))
	polyKey := *ks.polyKey() // a long message's later runs overwrite buf
	ct := out[:len(plaintext)]
	ks.xor(ct, plaintext)
	polySum((*[TagSize]byte)(out[len(plaintext):]), &polyKey, ct)
}

// open checks the tag of ciphertext and only then writes its plaintext to
// out; on failure out is left as it was.
func (k *Key) open(out []byte, counter uint64, ciphertext []byte) bool {
	ct := ciphertext[:len(ciphertext)-TagSize]
	var ks keystream
	ks.start(k, counter, len(ct))
	var tag [TagSize]byte
	polySum(&tag, ks.polyKey(), ct)
	if subtle.ConstantTimeCompare(tag[:], ciphertext[len(ct):]) != 1 {
		return false
	}
	ks.xor(out, ct)
	return true
}
