// Package chachapoly is ChaCha20-Poly1305 (RFC 8439) for WireGuard
// transport messages: the nonce is the 64-bit message counter and there
// is no additional data. On CPUs with AVX-512 IFMA it runs its own
// vector kernels; elsewhere it is golang.org/x/crypto's chacha20poly1305,
// which is also the reference its tests compare against.
package chachapoly

// TagSize is the size of the Poly1305 tag that follows the ciphertext.
const TagSize = 16
