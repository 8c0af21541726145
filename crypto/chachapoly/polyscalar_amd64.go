//go:build !purego

package chachapoly

import (
	"encoding/binary"
	"math/bits"
)

// polyScalar is Poly1305 one block at a time, in radix 2^64: h is h0, h1
// and a few bits of h2, and r, being clamped, is two limbs whose top bits
// are clear, so the products never overflow. For a few blocks it beats
// the vector code, which first computes eight powers of r.
type polyScalar struct {
	h0, h1, h2 uint64
	r0, r1     uint64
}

func newPolyScalar(key *[32]byte) polyScalar {
	return polyScalar{
		r0: binary.LittleEndian.Uint64(key[0:8]) & 0x0ffffffc0fffffff,
		r1: binary.LittleEndian.Uint64(key[8:16]) & 0x0ffffffc0ffffffc,
	}
}

// blocks adds each 16-byte block of msg, with its 2^128 bit, and
// multiplies by r.
func (p *polyScalar) blocks(msg []byte) {
	h0, h1, h2 := p.h0, p.h1, p.h2
	r0, r1 := p.r0, p.r1
	for ; len(msg) >= 16; msg = msg[16:] {
		var c uint64
		h0, c = bits.Add64(h0, binary.LittleEndian.Uint64(msg[0:8]), 0)
		h1, c = bits.Add64(h1, binary.LittleEndian.Uint64(msg[8:16]), c)
		h2 += c + 1

		// h * r as four words t0..t3; h2 is at most 7 and r's limbs
		// below 2^60, so h2 r fits a word.
		hi00, t0 := bits.Mul64(h0, r0)
		hi10, lo10 := bits.Mul64(h1, r0)
		hi01, lo01 := bits.Mul64(h0, r1)
		hi11, lo11 := bits.Mul64(h1, r1)
		t1, c := bits.Add64(hi00, lo10, 0)
		t2, c2 := bits.Add64(hi10, lo11, c)
		t3 := hi11 + c2
		t1, c = bits.Add64(t1, lo01, 0)
		t2, c2 = bits.Add64(t2, hi01, c)
		t3 += c2
		t2, c = bits.Add64(t2, h2*r0, 0)
		t3 += h2*r1 + c

		// 2^130 = 5: keep the low 130 bits and add 5 times the rest,
		// as 4x + x with x = (t3:t2) >> 2.
		h0, h1, h2 = t0, t1, t2&3
		x0, x1 := t2&^3, t3
		h0, c = bits.Add64(h0, x0, 0)
		h1, c = bits.Add64(h1, x1, c)
		h2 += c
		x0, x1 = x0>>2|x1<<62, x1>>2
		h0, c = bits.Add64(h0, x0, 0)
		h1, c = bits.Add64(h1, x1, c)
		h2 += c
	}
	p.h0, p.h1, p.h2 = h0, h1, h2
}

// sum writes h + s mod 2^128, h reduced fully first, to tag.
func (p *polyScalar) sum(tag *[TagSize]byte, key *[32]byte) {
	// h - p = h + 5 - 2^130: take it when that does not borrow.
	g0, c := bits.Add64(p.h0, 5, 0)
	g1, c := bits.Add64(p.h1, 0, c)
	g2 := p.h2 + c
	take := -(g2 >> 2) // all ones when h >= p; no branch on secret data
	h0 := p.h0 ^ (p.h0^g0)&take
	h1 := p.h1 ^ (p.h1^g1)&take
	h0, c = bits.Add64(h0, binary.LittleEndian.Uint64(key[16:24]), 0)
	h1, _ = bits.Add64(h1, binary.LittleEndian.Uint64(key[24:32]), c)
	binary.LittleEndian.PutUint64(tag[0:8], h0)
	binary.LittleEndian.PutUint64(tag[8:16], h1)
}
