package packet

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds b as big-endian 16-bit words to sum: the ones' complement
// arithmetic of the Internet checksum (RFC 1071); fold the result with
// Fold. It sums little-endian 32-bit words into four independent
// accumulators, which has no carry chain to wait on, and swaps the bytes
// of the folded result at the end: the ones' complement sum is byte-order
// independent up to that swap.
func Sum(b []byte, sum uint64) uint64 {
	var s0, s1, s2, s3 uint64
	for len(b) >= 32 {
		s0 += uint64(binary.LittleEndian.Uint32(b)) + uint64(binary.LittleEndian.Uint32(b[4:]))
		s1 += uint64(binary.LittleEndian.Uint32(b[8:])) + uint64(binary.LittleEndian.Uint32(b[12:]))
		s2 += uint64(binary.LittleEndian.Uint32(b[16:])) + uint64(binary.LittleEndian.Uint32(b[20:]))
		s3 += uint64(binary.LittleEndian.Uint32(b[24:])) + uint64(binary.LittleEndian.Uint32(b[28:]))
		b = b[32:]
	}
	le := s0 + s1 + s2 + s3 // at most 2^45 for 64 KiB: no overflow
	for len(b) >= 4 {
		le += uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		le += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		le += uint64(b[0])
	}
	return sum + uint64(bits.ReverseBytes16(Fold(le)))
}

// Fold folds a sum from Sum into 16 bits with end-around carry; a
// checksum field holds its complement.
func Fold(sum uint64) uint16 {
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}
