#include "textflag.h"

// func Asm(n uint64) uint64
//
// Spins n (> 0) rounds using BP and R14 as scratch registers, as hand-written
// assembly and C code may: inside it BP is no frame pointer and R14 is not g.
// Both are restored before returning.
TEXT ·Asm(SB), NOSPLIT|NOFRAME, $0-16
	MOVQ	n+0(FP), CX
	MOVQ	BP, R8
	MOVQ	R14, R9
	XORQ	BP, BP
	MOVQ	$0x1234, R14
loop:
	ADDQ	CX, BP
	IMULQ	$3, R14
	XORQ	BP, R14
	DECQ	CX
	JNZ	loop
	MOVQ	R14, AX
	MOVQ	R8, BP
	MOVQ	R9, R14
	MOVQ	AX, ret+8(FP)
	RET
