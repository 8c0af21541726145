//go:build !purego

package chachapoly

import (
	"encoding/binary"
	"math/bits"
)

// The Poly1305 half of the AEAD, over WireGuard's input: the ciphertext,
// zero-padded to 16 bytes, then the lengths block. There is no
// additional data, so every block is a full one.
//
// polyBlocks runs eight lanes; lane j ends up holding the blocks at
// positions j, j+8, j+16, ... The message is padded at the front with
// zero blocks to a multiple of eight (a zero block before any data leaves
// Poly1305's state at zero), every chunk but the last is multiplied by
// r^8, and the last by r^(8-j) in lane j. The sum of the lanes is then
// the sequential h = ((m1 r + m2) r + ...) r.

const (
	mask44 = 1<<44 - 1
	mask42 = 1<<42 - 1
)

// polyLanes is h for eight lanes, as limbs 0, 1 and 2.
type polyLanes [3][8]uint64

// polyMultiplier is r for each lane: limbs r0, r1, r2, then s1 = 20 r1
// and s2 = 20 r2.
type polyMultiplier [5][8]uint64

// limbs is a value mod 2^130-5 in radix 2^44, reduced to 44, 44 and 42
// bits (plus a small carry in limb 1).
type limbs [3]uint64

// polyBlocks adds each 128-byte chunk of msg to acc, lane by lane, and
// multiplies by r. pad is what each lane adds for the 2^128 bit that ends
// a block: 0 for the leading zero blocks, which must stay zero.
//
//go:noescape
func polyBlocks(acc *polyLanes, msg *byte, chunks int, r *polyMultiplier, pad *[8]uint64)

// polyPowers sets last to r^8, r^7, ..., r in lanes 0 to 7, and each to
// r^8 in all lanes.
//
//go:noescape
func polyPowers(r *limbs, last, each *polyMultiplier)

// padAll marks all eight lanes' blocks as message blocks.
var padAll = [8]uint64{1 << 40, 1 << 40, 1 << 40, 1 << 40, 1 << 40, 1 << 40, 1 << 40, 1 << 40}

// polySum computes the Poly1305 tag of WireGuard's AEAD input for ct
// under the one-time key.
func polySum(tag *[TagSize]byte, key *[32]byte, ct []byte) {
	if len(ct) <= scalarMax {
		polySumScalar(tag, key, ct)
	} else {
		polySumLanes(tag, key, ct)
	}
}

// polySumLanes is polySum on eight lanes.
func polySumLanes(tag *[TagSize]byte, key *[32]byte, ct []byte) {
	// r, clamped, into limbs.
	r0 := binary.LittleEndian.Uint64(key[0:8]) & 0x0ffffffc0fffffff
	r1 := binary.LittleEndian.Uint64(key[8:16]) & 0x0ffffffc0ffffffc
	r := limbs{r0 & mask44, (r0>>44 | r1<<20) & mask44, r1 >> 24}

	// Lane j of the last chunk takes r^(8-j), every other chunk r^8.
	var last, each polyMultiplier
	polyPowers(&r, &last, &each)

	blocks := (len(ct)+15)/16 + 1
	lead := (8 - blocks%8) % 8 // zero blocks in front
	chunks := (blocks + lead) / 8

	headPad := padAll
	clear(headPad[:lead])

	var acc polyLanes
	var buf [128]byte
	// Where the last chunk starts in ct.
	tailStart := 128*(chunks-1) - 16*lead
	if chunks > 1 {
		copy(buf[16*lead:], ct[:128-16*lead])
		polyBlocks(&acc, &buf[0], 1, &each, &headPad)
		if mid := ct[128-16*lead : tailStart]; len(mid) > 0 {
			polyBlocks(&acc, &mid[0], len(mid)/128, &each, &padAll)
		}
		buf = [128]byte{}
		copy(buf[:], ct[tailStart:])
		headPad = padAll
	} else {
		copy(buf[16*lead:], ct)
	}
	// The lengths block: no additional data, then the ciphertext's.
	binary.LittleEndian.PutUint64(buf[120:], uint64(len(ct)))
	polyBlocks(&acc, &buf[0], 1, &last, &headPad)

	var h limbs
	for j := range 8 {
		h[0] += acc[0][j]
		h[1] += acc[1][j]
		h[2] += acc[2][j]
	}
	finish(tag, h, key)
}

// scalarMax is the longest ciphertext that the one-block-at-a-time code
// MACs faster than the lanes, which first compute the powers of r.
const scalarMax = 384

func polySumScalar(tag *[TagSize]byte, key *[32]byte, ct []byte) {
	p := newPolyScalar(key)
	full := len(ct) &^ 15
	p.blocks(ct[:full])
	// The zero-padded last piece of ct, if any, then the lengths block.
	var last [32]byte
	n := copy(last[:16], ct[full:])
	binary.LittleEndian.PutUint64(last[24:], uint64(len(ct)))
	if n > 0 {
		p.blocks(last[:])
	} else {
		p.blocks(last[16:])
	}
	p.sum(tag, key)
}

// finish reduces h fully mod 2^130-5, adds s and writes the tag.
func finish(tag *[TagSize]byte, h limbs, key *[32]byte) {
	// Carry twice around: the lane sums are up to 48 bits a limb.
	for range 2 {
		h[1] += h[0] >> 44
		h[0] &= mask44
		h[2] += h[1] >> 44
		h[1] &= mask44
		h[0] += 5 * (h[2] >> 42)
		h[2] &= mask42
	}
	h[1] += h[0] >> 44
	h[0] &= mask44
	h[2] += h[1] >> 44
	h[1] &= mask44
	// Now h < 2^130 + small. Subtract p if h+5 reaches 2^130, in constant time.
	g0 := h[0] + 5
	g1 := h[1] + g0>>44
	g0 &= mask44
	g2 := h[2] + g1>>44
	g1 &= mask44
	useG := -(g2 >> 42) // all ones when h >= p
	g2 &= mask42
	h[0] ^= (h[0] ^ g0) & useG
	h[1] ^= (h[1] ^ g1) & useG
	h[2] ^= (h[2] ^ g2) & useG

	lo := h[0] | h[1]<<44
	hi := h[1]>>20 | h[2]<<24
	var c uint64
	lo, c = bits.Add64(lo, binary.LittleEndian.Uint64(key[16:24]), 0)
	hi, _ = bits.Add64(hi, binary.LittleEndian.Uint64(key[24:32]), c)
	binary.LittleEndian.PutUint64(tag[0:8], lo)
	binary.LittleEndian.PutUint64(tag[8:16], hi)
}
