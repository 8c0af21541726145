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

// Registers. A group of n interleaved sets keeps set k in Z(4k)..Z(4k+3) as
// rows a, b, c, d (lane i = that row of block i), so up to 6 sets fit.
#define ROWA Z24 // input row A in every lane
#define ROWB Z25 // input row B
#define ROWC Z26 // input row C
#define DOUT Z27 // row D of the next set to output (the next group's first set)
#define DIN  Z28 // row D of the next set to load
#define STEP Z29 // counter step of one set
#define TMP  Z30 // transpose temp

// One quarter-round step: x += y; z ^= x; z <<<= r.
#define QSTEP(x, y, z, r) \
	VPADDD y, x, x; \
	VPXORD x, z, z; \
	VPROLD $r, z, z

// Quarter round on rows a, b, c, d (all four columns of every lane at once).
#define QR(a, b, c, d) \
	QSTEP(a, b, d, 16); \
	QSTEP(c, d, b, 12); \
	QSTEP(a, b, d, 8); \
	QSTEP(c, d, b, 7)

// Line the diagonals up as columns by rotating rows a, c, d by -1, +1, +2
// words and leaving b alone: b is the last row a quarter round writes, so
// shuffling it would lengthen the dependency chain. UNDIAG reverts it.
#define DIAG(a, c, d) \
	VPSHUFD $0x93, a, a; \
	VPSHUFD $0x39, c, c; \
	VPSHUFD $0x4e, d, d

#define UNDIAG(a, c, d) \
	VPSHUFD $0x39, a, a; \
	VPSHUFD $0x93, c, c; \
	VPSHUFD $0x4e, d, d

// Load a set with the input state and the next counters.
#define INIT(a, b, c, d) \
	VMOVDQA64 ROWA, a; \
	VMOVDQA64 ROWB, b; \
	VMOVDQA64 ROWC, c; \
	VMOVDQA64 DIN, d; \
	VPADDD STEP, DIN, DIN

// Add the input state to a set, transpose it into whole blocks, XOR them
// with the 256 bytes at off(SI) and store at off(DI). The transpose works in
// place with one temp: first b = a2 a3 b2 b3, TMP = a0 a1 b0 b1,
// d = c2 c3 d2 d3, a = c0 c1 d0 d1; then blocks 0-3 land in c, TMP, a, b.
#define OUT(a, b, c, d, off) \
	VPADDD ROWA, a, a; \
	VPADDD ROWB, b, b; \
	VPADDD ROWC, c, c; \
	VPADDD DOUT, d, d; \
	VPADDD STEP, DOUT, DOUT; \
	VSHUFI64X2 $0x44, b, a, TMP; \
	VSHUFI64X2 $0xee, b, a, b; \
	VSHUFI64X2 $0x44, d, c, a; \
	VSHUFI64X2 $0xee, d, c, d; \
	VSHUFI64X2 $0x88, a, TMP, c; \
	VSHUFI64X2 $0xdd, a, TMP, TMP; \
	VSHUFI64X2 $0x88, d, b, a; \
	VSHUFI64X2 $0xdd, d, b, b; \
	VPXORD off+0(SI), c, c; \
	VPXORD off+64(SI), TMP, TMP; \
	VPXORD off+128(SI), a, a; \
	VPXORD off+192(SI), b, b; \
	VMOVDQU32 c, off+0(DI); \
	VMOVDQU32 TMP, off+64(DI); \
	VMOVDQU32 a, off+128(DI); \
	VMOVDQU32 b, off+192(DI)

// The macros above applied to sets 0..n-1, one set after another; the
// out-of-order core overlaps the sets' dependency chains. Measured, a whole
// quarter round per set beats interleaving the sets instruction by
// instruction.
#define INITS1 INIT(Z0, Z1, Z2, Z3)
#define INITS2 INITS1; INIT(Z4, Z5, Z6, Z7)
#define INITS3 INITS2; INIT(Z8, Z9, Z10, Z11)
#define INITS4 INITS3; INIT(Z12, Z13, Z14, Z15)
#define INITS5 INITS4; INIT(Z16, Z17, Z18, Z19)
#define INITS6 INITS5; INIT(Z20, Z21, Z22, Z23)

#define QRS1 QR(Z0, Z1, Z2, Z3)
#define QRS2 QRS1; QR(Z4, Z5, Z6, Z7)
#define QRS3 QRS2; QR(Z8, Z9, Z10, Z11)
#define QRS4 QRS3; QR(Z12, Z13, Z14, Z15)
#define QRS5 QRS4; QR(Z16, Z17, Z18, Z19)
#define QRS6 QRS5; QR(Z20, Z21, Z22, Z23)

#define DIAGS1 DIAG(Z0, Z2, Z3)
#define DIAGS2 DIAGS1; DIAG(Z4, Z6, Z7)
#define DIAGS3 DIAGS2; DIAG(Z8, Z10, Z11)
#define DIAGS4 DIAGS3; DIAG(Z12, Z14, Z15)
#define DIAGS5 DIAGS4; DIAG(Z16, Z18, Z19)
#define DIAGS6 DIAGS5; DIAG(Z20, Z22, Z23)

#define UNDIAGS1 UNDIAG(Z0, Z2, Z3)
#define UNDIAGS2 UNDIAGS1; UNDIAG(Z4, Z6, Z7)
#define UNDIAGS3 UNDIAGS2; UNDIAG(Z8, Z10, Z11)
#define UNDIAGS4 UNDIAGS3; UNDIAG(Z12, Z14, Z15)
#define UNDIAGS5 UNDIAGS4; UNDIAG(Z16, Z18, Z19)
#define UNDIAGS6 UNDIAGS5; UNDIAG(Z20, Z22, Z23)

#define OUTS1 OUT(Z0, Z1, Z2, Z3, 0)
#define OUTS2 OUTS1; OUT(Z4, Z5, Z6, Z7, 256)
#define OUTS3 OUTS2; OUT(Z8, Z9, Z10, Z11, 512)
#define OUTS4 OUTS3; OUT(Z12, Z13, Z14, Z15, 768)
#define OUTS5 OUTS4; OUT(Z16, Z17, Z18, Z19, 1024)
#define OUTS6 OUTS5; OUT(Z20, Z21, Z22, Z23, 1280)

// 10 double rounds with the n-set macros; label must be unique per use.
#define ROUNDS(QRS, DIAGS, UNDIAGS, label) \
	MOVL $10, DX; \
label: \
	QRS; \
	DIAGS; \
	QRS; \
	UNDIAGS; \
	DECL DX; \
	JNZ  label

// func chachaXOR(dst, src *byte, sets int, st *[16]uint32)
TEXT ·chachaXOR(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ sets+16(FP), CX
	MOVQ st+24(FP), AX
	TESTQ CX, CX
	JLE  done

	VBROADCASTI32X4 0(AX), ROWA
	VBROADCASTI32X4 16(AX), ROWB
	VBROADCASTI32X4 32(AX), ROWC
	VBROADCASTI32X4 48(AX), DOUT
	VPADDD ·ctrLanes<>(SB), DOUT, DOUT
	VMOVDQA64 DOUT, DIN
	VBROADCASTI32X4 ·ctrFour<>(SB), STEP

	// A group's cost grows slowly with its size (1 set ~95 ns, 6 sets
	// ~145 ns): small groups are latency bound, 6 sets nearly fill the
	// vector pipes. So run groups of 6, then one group of the remainder.
	CMPQ CX, $6
	JB   tail

loop6:
	INITS6
	ROUNDS(QRS6, DIAGS6, UNDIAGS6, rounds6)
	OUTS6
	ADDQ $1536, SI
	ADDQ $1536, DI
	SUBQ $6, CX
	CMPQ CX, $6
	JAE  loop6

	// 0-5 sets left.
tail:
	CMPQ CX, $3
	JB   tail2
	JE   group3
	CMPQ CX, $5
	JE   group5

	INITS4
	ROUNDS(QRS4, DIAGS4, UNDIAGS4, rounds4)
	OUTS4
	JMP done

group5:
	INITS5
	ROUNDS(QRS5, DIAGS5, UNDIAGS5, rounds5)
	OUTS5
	JMP done

group3:
	INITS3
	ROUNDS(QRS3, DIAGS3, UNDIAGS3, rounds3)
	OUTS3
	JMP done

tail2:
	CMPQ CX, $1
	JB   done
	JE   group1

	INITS2
	ROUNDS(QRS2, DIAGS2, UNDIAGS2, rounds2)
	OUTS2
	JMP done

group1:
	INITS1
	ROUNDS(QRS1, DIAGS1, UNDIAGS1, rounds1)
	OUTS1

done:
	VZEROUPPER
	RET
