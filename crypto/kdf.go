package crypto

import (
	"crypto/hmac"
	"hash"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// The primitives of WireGuard's whitepaper (section 5.4), named as there.
// HASH is BLAKE2s-256, MAC is keyed BLAKE2s-128, HMAC is RFC 2104 over
// BLAKE2s-256 and KDFn is HKDF built from that HMAC. The handshake uses
// them a few dozen times per message, so none of this is on the per-packet
// path and clarity wins over allocation counts here.

// hashSum returns HASH(a || b ...).
func hashSum(parts ...[]byte) [KeySize]byte {
	h, _ := blake2s.New256(nil) // no key: cannot fail
	for _, p := range parts {
		h.Write(p)
	}
	var out [KeySize]byte
	h.Sum(out[:0])
	return out
}

// mac returns the 16-byte keyed BLAKE2s MAC(key, a || b ...). It is what
// mac1, mac2 and the cookie are made of.
func mac(key []byte, parts ...[]byte) [MACSize]byte {
	h, err := blake2s.New128(key)
	if err != nil {
		// Keys are always 16 or 32 bytes here; a different length is a
		// programming error inside this package, not bad input.
		panic("crypto: bad MAC key length")
	}
	for _, p := range parts {
		h.Write(p)
	}
	var out [MACSize]byte
	h.Sum(out[:0])
	return out
}

func newBlake2s256() hash.Hash {
	h, _ := blake2s.New256(nil)
	return h
}

// hmacSum returns HMAC(key, a || b ...).
func hmacSum(key []byte, parts ...[]byte) [KeySize]byte {
	h := hmac.New(newBlake2s256, key)
	for _, p := range parts {
		h.Write(p)
	}
	var out [KeySize]byte
	h.Sum(out[:0])
	return out
}

// kdf derives len(out) keys (1 to 3) from the chaining key ck and input,
// exactly as HKDF does: a pseudorandom key from HMAC(ck, input), then each
// output is the HMAC of the previous output and its one-byte index. Noise's
// MixKey, MixKeyAndHash and Split are all this function with n = 2, 3, 2.
func kdf(out [][KeySize]byte, ck *[KeySize]byte, input []byte) {
	prk := hmacSum(ck[:], input)
	var prev []byte
	for i := range out {
		out[i] = hmacSum(prk[:], prev, []byte{byte(i + 1)})
		prev = out[i][:]
	}
	clear(prk[:])
}

// kdf1 returns KDF1(ck, input).
func kdf1(ck *[KeySize]byte, input []byte) [KeySize]byte {
	var out [1][KeySize]byte
	kdf(out[:], ck, input)
	return out[0]
}

// kdf2 returns KDF2(ck, input).
func kdf2(ck *[KeySize]byte, input []byte) (a, b [KeySize]byte) {
	var out [2][KeySize]byte
	kdf(out[:], ck, input)
	a, b = out[0], out[1]
	clear(out[:])
	return a, b
}

// kdf3 returns KDF3(ck, input).
func kdf3(ck *[KeySize]byte, input []byte) (a, b, c [KeySize]byte) {
	var out [3][KeySize]byte
	kdf(out[:], ck, input)
	a, b, c = out[0], out[1], out[2]
	clear(out[:])
	return a, b, c
}

// zeroNonce is the nonce of every handshake AEAD. Each handshake key
// encrypts exactly one message, so a constant nonce is safe and is what
// the protocol specifies.
var zeroNonce [chacha20poly1305.NonceSize]byte

// aeadSeal appends AEAD(key, 0, plaintext, ad) to dst.
func aeadSeal(dst []byte, key *[KeySize]byte, plaintext, ad []byte) []byte {
	aead, _ := chacha20poly1305.New(key[:]) // 32-byte key: cannot fail
	return aead.Seal(dst, zeroNonce[:], plaintext, ad)
}

// aeadOpen appends the plaintext of ciphertext to dst, or returns
// ErrDecrypt if it does not authenticate (including when it is shorter
// than a tag).
func aeadOpen(dst []byte, key *[KeySize]byte, ciphertext, ad []byte) ([]byte, error) {
	aead, _ := chacha20poly1305.New(key[:])
	out, err := aead.Open(dst, zeroNonce[:], ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}
