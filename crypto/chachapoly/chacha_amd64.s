//go:build !purego

#include "textflag.h"

// Per-lane block counter offsets for the D row: lane i gets counter+i.
DATA ·ctrLanes<>+0x00(SB)/4, $0
DATA ·ctrLanes<>+0x04(SB)/4, $0
DATA ·ctrLanes<>+0x08(SB)/4, $0
DATA ·ctrLanes<>+0x0c(SB)/4, $0
DATA ·ctrLanes<>+0x10(SB)/4, $1
DATA ·ctrLanes<>+0x14(SB)/4, $0
DATA ·ctrLanes<>+0x18(SB)/4, $0
DATA ·ctrLanes<>+0x1c(SB)/4, $0
DATA ·ctrLanes<>+0x20(SB)/4, $2
DATA ·ctrLanes<>+0x24(SB)/4, $0
DATA ·ctrLanes<>+0x28(SB)/4, $0
DATA ·ctrLanes<>+0x2c(SB)/4, $0
DATA ·ctrLanes<>+0x30(SB)/4, $3
DATA ·ctrLanes<>+0x34(SB)/4, $0
DATA ·ctrLanes<>+0x38(SB)/4, $0
DATA ·ctrLanes<>+0x3c(SB)/4, $0
GLOBL ·ctrLanes<>(SB), RODATA|NOPTR, $64

// Counter step of one set (4 blocks), broadcast to every lane.
DATA ·ctrFour<>+0x00(SB)/4, $4
DATA ·ctrFour<>+0x04(SB)/4, $0
DATA ·ctrFour<>+0x08(SB)/4, $0
DATA ·ctrFour<>+0x0c(SB)/4, $0
GLOBL ·ctrFour<>(SB), RODATA|NOPTR, $16

// One quarter-round step (x += y; z ^= x; z <<<= r) on one set.
#define STEP1(x, y, z, r) \
	VPADDD y, x, x; \
	VPXORD x, z, z; \
	VPROLD $r, z, z

// The same step on four independent sets, grouped by instruction so the
// four dependency chains overlap.
#define STEP4(x0, y0, z0, x1, y1, z1, x2, y2, z2, x3, y3, z3, r) \
	VPADDD y0, x0, x0; \
	VPADDD y1, x1, x1; \
	VPADDD y2, x2, x2; \
	VPADDD y3, x3, x3; \
	VPXORD x0, z0, z0; \
	VPXORD x1, z1, z1; \
	VPXORD x2, z2, z2; \
	VPXORD x3, z3, z3; \
	VPROLD $r, z0, z0; \
	VPROLD $r, z1, z1; \
	VPROLD $r, z2, z2; \
	VPROLD $r, z3, z3

// Quarter round on rows a, b, c, d (all four columns of every lane at once).
#define QR1(a, b, c, d) \
	STEP1(a, b, d, 16); \
	STEP1(c, d, b, 12); \
	STEP1(a, b, d, 8); \
	STEP1(c, d, b, 7)

#define QR4(a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3) \
	STEP4(a0, b0, d0, a1, b1, d1, a2, b2, d2, a3, b3, d3, 16); \
	STEP4(c0, d0, b0, c1, d1, b1, c2, d2, b2, c3, d3, b3, 12); \
	STEP4(a0, b0, d0, a1, b1, d1, a2, b2, d2, a3, b3, d3, 8); \
	STEP4(c0, d0, b0, c1, d1, b1, c2, d2, b2, c3, d3, b3, 7)

// Rotate rows b, c, d left by 1, 2, 3 words so the diagonals line up as
// columns; SHUFFLE(b, c, d, $0x93, $0x4e, $0x39) undoes it.
#define SHUFFLE(b, c, d, ib, ic, id) \
	VPSHUFD ib, b, b; \
	VPSHUFD ic, c, c; \
	VPSHUFD id, d, d

// Transpose the set in rows a, b, c, d (lane i = that row of block i) into
// whole blocks, XOR them with 256 bytes at off(SI) and store at off(DI).
// First Z24 = a0 a1 b0 b1, Z25 = c0 c1 d0 d1, Z26 = a2 a3 b2 b3,
// Z27 = c2 c3 d2 d3; then the even/odd 128-bit lanes of each pair give
// blocks 0 and 1 (and 2 and 3). Clobbers a, b, c, d and Z24-Z27.
#define XORSET(a, b, c, d, off) \
	VSHUFI64X2 $0x44, b, a, Z24; \
	VSHUFI64X2 $0x44, d, c, Z25; \
	VSHUFI64X2 $0xee, b, a, Z26; \
	VSHUFI64X2 $0xee, d, c, Z27; \
	VSHUFI64X2 $0x88, Z25, Z24, a; \
	VSHUFI64X2 $0xdd, Z25, Z24, b; \
	VSHUFI64X2 $0x88, Z27, Z26, c; \
	VSHUFI64X2 $0xdd, Z27, Z26, d; \
	VPXORD off+0(SI), a, a; \
	VPXORD off+64(SI), b, b; \
	VPXORD off+128(SI), c, c; \
	VPXORD off+192(SI), d, d; \
	VMOVDQU32 a, off+0(DI); \
	VMOVDQU32 b, off+64(DI); \
	VMOVDQU32 c, off+128(DI); \
	VMOVDQU32 d, off+192(DI)

// func chachaXOR(dst, src *byte, sets int, st *[16]uint32)
//
// Registers: Z16-Z18 = rows A-C of the input state in every lane, Z19 = row
// D with the counters of the next set, Z20 = counter step of one set,
// Z21-Z23 = row D of sets 1-3 in the 4-set loop, Z24-Z27 = transpose temps.
TEXT ·chachaXOR(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ sets+16(FP), CX
	MOVQ st+24(FP), AX
	TESTQ CX, CX
	JLE  done

	VBROADCASTI32X4 0(AX), Z16
	VBROADCASTI32X4 16(AX), Z17
	VBROADCASTI32X4 32(AX), Z18
	VBROADCASTI32X4 48(AX), Z19
	VPADDD ·ctrLanes<>(SB), Z19, Z19
	VBROADCASTI32X4 ·ctrFour<>(SB), Z20

	CMPQ CX, $4
	JB   single

	// 16 blocks per iteration: four independent sets in Z0-Z15 keep all
	// vector pipes busy despite the serial dependencies inside a round.
loop4:
	VPADDD Z20, Z19, Z21
	VPADDD Z20, Z21, Z22
	VPADDD Z20, Z22, Z23
	VMOVDQA64 Z16, Z0
	VMOVDQA64 Z17, Z1
	VMOVDQA64 Z18, Z2
	VMOVDQA64 Z19, Z3
	VMOVDQA64 Z16, Z4
	VMOVDQA64 Z17, Z5
	VMOVDQA64 Z18, Z6
	VMOVDQA64 Z21, Z7
	VMOVDQA64 Z16, Z8
	VMOVDQA64 Z17, Z9
	VMOVDQA64 Z18, Z10
	VMOVDQA64 Z22, Z11
	VMOVDQA64 Z16, Z12
	VMOVDQA64 Z17, Z13
	VMOVDQA64 Z18, Z14
	VMOVDQA64 Z23, Z15
	MOVL $10, DX

rounds4:
	QR4(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	SHUFFLE(Z1, Z2, Z3, $0x39, $0x4e, $0x93)
	SHUFFLE(Z5, Z6, Z7, $0x39, $0x4e, $0x93)
	SHUFFLE(Z9, Z10, Z11, $0x39, $0x4e, $0x93)
	SHUFFLE(Z13, Z14, Z15, $0x39, $0x4e, $0x93)
	QR4(Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15)
	SHUFFLE(Z1, Z2, Z3, $0x93, $0x4e, $0x39)
	SHUFFLE(Z5, Z6, Z7, $0x93, $0x4e, $0x39)
	SHUFFLE(Z9, Z10, Z11, $0x93, $0x4e, $0x39)
	SHUFFLE(Z13, Z14, Z15, $0x93, $0x4e, $0x39)
	DECL DX
	JNZ  rounds4

	VPADDD Z16, Z0, Z0
	VPADDD Z17, Z1, Z1
	VPADDD Z18, Z2, Z2
	VPADDD Z19, Z3, Z3
	VPADDD Z16, Z4, Z4
	VPADDD Z17, Z5, Z5
	VPADDD Z18, Z6, Z6
	VPADDD Z21, Z7, Z7
	VPADDD Z16, Z8, Z8
	VPADDD Z17, Z9, Z9
	VPADDD Z18, Z10, Z10
	VPADDD Z22, Z11, Z11
	VPADDD Z16, Z12, Z12
	VPADDD Z17, Z13, Z13
	VPADDD Z18, Z14, Z14
	VPADDD Z23, Z15, Z15

	XORSET(Z0, Z1, Z2, Z3, 0)
	XORSET(Z4, Z5, Z6, Z7, 256)
	XORSET(Z8, Z9, Z10, Z11, 512)
	XORSET(Z12, Z13, Z14, Z15, 768)

	VPADDD Z20, Z23, Z19
	ADDQ $1024, SI
	ADDQ $1024, DI
	SUBQ $4, CX
	CMPQ CX, $4
	JAE  loop4

	TESTQ CX, CX
	JZ    done

	// Remaining 1-3 sets, one at a time.
single:
	VMOVDQA64 Z16, Z0
	VMOVDQA64 Z17, Z1
	VMOVDQA64 Z18, Z2
	VMOVDQA64 Z19, Z3
	MOVL $10, DX

rounds1:
	QR1(Z0, Z1, Z2, Z3)
	SHUFFLE(Z1, Z2, Z3, $0x39, $0x4e, $0x93)
	QR1(Z0, Z1, Z2, Z3)
	SHUFFLE(Z1, Z2, Z3, $0x93, $0x4e, $0x39)
	DECL DX
	JNZ  rounds1

	VPADDD Z16, Z0, Z0
	VPADDD Z17, Z1, Z1
	VPADDD Z18, Z2, Z2
	VPADDD Z19, Z3, Z3
	XORSET(Z0, Z1, Z2, Z3, 0)

	VPADDD Z20, Z19, Z19
	ADDQ $256, SI
	ADDQ $256, DI
	DECQ CX
	JNZ  single

done:
	VZEROUPPER
	RET
