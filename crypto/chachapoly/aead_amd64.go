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

// input returns the block input for block 0 of the message with counter.
func (k *Key) input(counter uint64) [16]uint32 {
	st := k.state
	st[13] = 0
	st[14] = uint32(counter)
	st[15] = uint32(counter >> 32)
	return st
}

// seal writes the ciphertext of plaintext and its tag to out.
func (k *Key) seal(out []byte, counter uint64, plaintext []byte) {
	st := k.input(counter)
	var ks [keystreamSets * 256]byte
	sets := setsFor(len(plaintext))
	chachaXOR(&ks[0], &zeros[0], sets, &st)
	polyKey := [32]byte(ks[:32]) // a long message's later runs overwrite ks
	ct := out[:len(plaintext)]
	xorStream(ct, plaintext, &ks, sets, &st)
	polySum((*[TagSize]byte)(out[len(plaintext):]), &polyKey, ct)
}

// open checks the tag of ciphertext and only then writes its plaintext to
// out; on failure out is left as it was.
func (k *Key) open(out []byte, counter uint64, ciphertext []byte) bool {
	st := k.input(counter)
	ct := ciphertext[:len(ciphertext)-TagSize]
	var ks [keystreamSets * 256]byte
	sets := setsFor(len(ct))
	chachaXOR(&ks[0], &zeros[0], sets, &st)
	var tag [TagSize]byte
	polySum(&tag, (*[32]byte)(ks[:32]), ct)
	if subtle.ConstantTimeCompare(tag[:], ciphertext[len(ct):]) != 1 {
		return false
	}
	xorStream(out, ct, &ks, sets, &st)
	return true
}

// setsFor returns how many sets the first run makes for a message of n
// bytes: block 0 and the blocks after it, up to the buffer's size.
func setsFor(n int) int {
	return min((n+64+255)/256, keystreamSets)
}

// xorStream XORs src with the keystream into dst. ks holds the first run
// of sets, made from st, whose block 0 was the Poly1305 key; longer
// messages need more runs, made into ks.
func xorStream(dst, src []byte, ks *[keystreamSets * 256]byte, sets int, st *[16]uint32) {
	n := subtle.XORBytes(dst, src, ks[64:sets*256])
	for n < len(src) {
		dst, src = dst[n:], src[n:]
		st[12] += uint32(sets * 4)
		sets = min((len(src)+255)/256, keystreamSets)
		chachaXOR(&ks[0], &zeros[0], sets, st)
		n = subtle.XORBytes(dst, src, ks[:sets*256])
	}
}
