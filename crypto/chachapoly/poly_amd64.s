//go:build !purego

#include "textflag.h"

// Poly1305 on eight blocks at once with AVX-512 IFMA.
//
// A 130-bit value is three limbs of 44, 44 and 42 bits, one 64-bit lane
// per block, so eight independent accumulators sit in three registers.
// VPMADD52LUQ/HUQ multiply the low 52 bits of two lanes and add the low
// or high 52 bits of the 104-bit product. With s = 20r (2^132 = 20 mod p):
//
//	d0 = h0 r0 + h1 s2 + h2 s1
//	d1 = h0 r1 + h1 r0 + h2 s2
//	d2 = h0 r2 + h1 r1 + h2 r0
//
// Each dN is kept as a low and a high half; the high half weighs 2^52,
// that is 2^8 above the next limb. The carry leaves h0, h1 just above
// 44 bits and h2 at 42: lazily reduced, which the next multiply allows.

DATA polyMask44<>+0(SB)/8, $0xfffffffffff
GLOBL polyMask44<>(SB), RODATA|NOPTR, $8
DATA polyMask42<>+0(SB)/8, $0x3ffffffffff
GLOBL polyMask42<>(SB), RODATA|NOPTR, $8

// Qword indexes that gather the low and the high halves of eight blocks
// from two registers of four blocks each.
DATA polyLoIdx<>+0(SB)/8, $0
DATA polyLoIdx<>+8(SB)/8, $2
DATA polyLoIdx<>+16(SB)/8, $4
DATA polyLoIdx<>+24(SB)/8, $6
DATA polyLoIdx<>+32(SB)/8, $8
DATA polyLoIdx<>+40(SB)/8, $10
DATA polyLoIdx<>+48(SB)/8, $12
DATA polyLoIdx<>+56(SB)/8, $14
GLOBL polyLoIdx<>(SB), RODATA|NOPTR, $64
DATA polyHiIdx<>+0(SB)/8, $1
DATA polyHiIdx<>+8(SB)/8, $3
DATA polyHiIdx<>+16(SB)/8, $5
DATA polyHiIdx<>+24(SB)/8, $7
DATA polyHiIdx<>+32(SB)/8, $9
DATA polyHiIdx<>+40(SB)/8, $11
DATA polyHiIdx<>+48(SB)/8, $13
DATA polyHiIdx<>+56(SB)/8, $15
GLOBL polyHiIdx<>(SB), RODATA|NOPTR, $64

// POLYMUL sets h = h*r lane by lane, lazily reduced. r0..s2 are the
// multiplier's limbs. It clobbers Z16-Z23 and needs the masks in Z8, Z9.
#define POLYMUL(h0, h1, h2, r0, r1, r2, s1, s2) \
	VPXORQ      Z16, Z16, Z16 \ // d0 lo
	VPXORQ      Z17, Z17, Z17 \ // d0 hi
	VPXORQ      Z18, Z18, Z18 \ // d1 lo
	VPXORQ      Z19, Z19, Z19 \ // d1 hi
	VPXORQ      Z20, Z20, Z20 \ // d2 lo
	VPXORQ      Z21, Z21, Z21 \ // d2 hi
	VPMADD52LUQ r0, h0, Z16   \
	VPMADD52HUQ r0, h0, Z17   \
	VPMADD52LUQ r1, h0, Z18   \
	VPMADD52HUQ r1, h0, Z19   \
	VPMADD52LUQ r2, h0, Z20   \
	VPMADD52HUQ r2, h0, Z21   \
	VPMADD52LUQ s2, h1, Z16   \
	VPMADD52HUQ s2, h1, Z17   \
	VPMADD52LUQ r0, h1, Z18   \
	VPMADD52HUQ r0, h1, Z19   \
	VPMADD52LUQ r1, h1, Z20   \
	VPMADD52HUQ r1, h1, Z21   \
	VPMADD52LUQ s1, h2, Z16   \
	VPMADD52HUQ s1, h2, Z17   \
	VPMADD52LUQ s2, h2, Z18   \
	VPMADD52HUQ s2, h2, Z19   \
	VPMADD52LUQ r0, h2, Z20   \
	VPMADD52HUQ r0, h2, Z21   \
	\ // Carry d0 -> d1 -> d2 -> (x5) h0 -> h1.
	VPSRLQ      $44, Z16, Z22 \
	VPANDQ      Z8, Z16, h0   \
	VPSLLQ      $8, Z17, Z23  \
	VPADDQ      Z22, Z18, Z18 \
	VPADDQ      Z23, Z18, Z18 \
	VPSRLQ      $44, Z18, Z22 \
	VPANDQ      Z8, Z18, h1   \
	VPSLLQ      $8, Z19, Z23  \
	VPADDQ      Z22, Z20, Z20 \
	VPADDQ      Z23, Z20, Z20 \
	VPSRLQ      $42, Z20, Z22 \
	VPANDQ      Z9, Z20, h2   \
	VPSLLQ      $10, Z21, Z23 \
	VPADDQ      Z23, Z22, Z22 \ // all that weighs 2^130
	VPSLLQ      $2, Z22, Z23  \
	VPADDQ      Z23, Z22, Z22 \ // x5
	VPADDQ      Z22, h0, h0   \
	VPSRLQ      $44, h0, Z22  \
	VPANDQ      Z8, h0, h0    \
	VPADDQ      Z22, h1, h1

// func polyBlocks(acc *polyLanes, msg *byte, chunks int, r *polyMultiplier, pad *[8]uint64)
TEXT ·polyBlocks(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), AX
	MOVQ msg+8(FP), SI
	MOVQ chunks+16(FP), CX
	MOVQ r+24(FP), DX
	MOVQ pad+32(FP), BX

	VMOVDQU64 0(AX), Z0   // h0
	VMOVDQU64 64(AX), Z1  // h1
	VMOVDQU64 128(AX), Z2 // h2
	VMOVDQU64 0(DX), Z3   // r0
	VMOVDQU64 64(DX), Z4  // r1
	VMOVDQU64 128(DX), Z5 // r2
	VMOVDQU64 192(DX), Z6 // s1
	VMOVDQU64 256(DX), Z7 // s2
	VPBROADCASTQ polyMask44<>(SB), Z8
	VPBROADCASTQ polyMask42<>(SB), Z9
	VMOVDQU64 0(BX), Z10  // the 2^128 bit of each lane's blocks
	VMOVDQU64 polyLoIdx<>(SB), Z11
	VMOVDQU64 polyHiIdx<>(SB), Z12

	TESTQ CX, CX
	JZ    done

loop:
	// Split eight 16-byte blocks into limbs, with the 2^128 pad bit.
	VMOVDQU64 0(SI), Z13
	VMOVDQU64 64(SI), Z14
	VMOVDQA64 Z11, Z15
	VPERMI2Q  Z14, Z13, Z15 // low qwords
	VMOVDQA64 Z12, Z16
	VPERMI2Q  Z14, Z13, Z16 // high qwords

	VPANDQ Z8, Z15, Z17
	VPADDQ Z17, Z0, Z0 // h0 += bits 0..43
	VPSRLQ $44, Z15, Z17
	VPSLLQ $20, Z16, Z18
	VPORQ  Z18, Z17, Z17
	VPANDQ Z8, Z17, Z17
	VPADDQ Z17, Z1, Z1 // h1 += bits 44..87
	VPSRLQ $24, Z16, Z17
	VPORQ  Z10, Z17, Z17
	VPADDQ Z17, Z2, Z2 // h2 += bits 88..127, pad

	POLYMUL(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)

	ADDQ $128, SI
	DECQ CX
	JNZ  loop

done:
	VMOVDQU64 Z0, 0(AX)
	VMOVDQU64 Z1, 64(AX)
	VMOVDQU64 Z2, 128(AX)
	VZEROUPPER
	RET

// TIMES20 sets s = 20 r.
#define TIMES20(r, s) \
	VPSLLQ $2, r, s   \
	VPADDQ r, s, s    \
	VPSLLQ $2, s, s

// POWERSTEP multiplies h (Z0..Z2) lane-wise by lane 0 of h where mask
// is set and by 1 where it is clear. Z10 and Z11 hold 1 and 0.
#define POWERSTEP(mask) \
	VPBROADCASTQ X0, Z12          \
	VPBROADCASTQ X1, Z13          \
	VPBROADCASTQ X2, Z14          \
	VMOVDQA64    Z10, Z3          \
	VMOVDQA64    Z11, Z4          \
	VMOVDQA64    Z11, Z5          \
	VMOVDQA64    Z12, mask, Z3    \
	VMOVDQA64    Z13, mask, Z4    \
	VMOVDQA64    Z14, mask, Z5    \
	TIMES20(Z4, Z6)               \
	TIMES20(Z5, Z7)               \
	POLYMUL(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7)

// func polyPowers(r *limbs, last, each *polyMultiplier)
//
// In three lane-wise multiplications: (r, ..., r) times (r, 1, r, 1, ...)
// is (r^2, r, r^2, r, ...); times (r^2, r^2, 1, 1, ...) is
// (r^4, r^3, r^2, r, ...); times (r^4 x4, 1 x4) is (r^8, ..., r). Lane 0
// then holds r^8 for the other chunks.
TEXT ·polyPowers(SB), NOSPLIT, $0-24
	MOVQ r+0(FP), AX
	MOVQ last+8(FP), DI
	MOVQ each+16(FP), SI

	VPBROADCASTQ polyMask44<>(SB), Z8
	VPBROADCASTQ polyMask42<>(SB), Z9
	VPBROADCASTQ 0(AX), Z0
	VPBROADCASTQ 8(AX), Z1
	VPBROADCASTQ 16(AX), Z2
	MOVQ $1, BX
	VPBROADCASTQ BX, Z10 // the multiplier 1: limbs (1, 0, 0)
	VPXORQ Z11, Z11, Z11

	MOVQ $0x55, BX
	KMOVW BX, K1
	MOVQ $0x33, BX
	KMOVW BX, K2
	MOVQ $0x0f, BX
	KMOVW BX, K3

	POWERSTEP(K1)
	POWERSTEP(K2)
	POWERSTEP(K3)

	TIMES20(Z1, Z3)
	TIMES20(Z2, Z4)
	VMOVDQU64 Z0, 0(DI)
	VMOVDQU64 Z1, 64(DI)
	VMOVDQU64 Z2, 128(DI)
	VMOVDQU64 Z3, 192(DI)
	VMOVDQU64 Z4, 256(DI)

	VPBROADCASTQ X0, Z0
	VPBROADCASTQ X1, Z1
	VPBROADCASTQ X2, Z2
	VPBROADCASTQ X3, Z3
	VPBROADCASTQ X4, Z4
	VMOVDQU64 Z0, 0(SI)
	VMOVDQU64 Z1, 64(SI)
	VMOVDQU64 Z2, 128(SI)
	VMOVDQU64 Z3, 192(SI)
	VMOVDQU64 Z4, 256(SI)
	VZEROUPPER
	RET
