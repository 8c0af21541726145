//go:build !purego

package chachapoly

import "golang.org/x/sys/cpu"

// useAVX512 selects the AVX-512 kernels. IFMA is what makes Poly1305 fast
// enough to be worth leaving x/crypto for; the OS must also save the
// registers, which x/sys/cpu checks.
var useAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW &&
	cpu.X86.HasAVX512VL && cpu.X86.HasAVX512IFMA
