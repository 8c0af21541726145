package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"golang.org/x/crypto/curve25519"
)

// Keys are fixed-size arrays so that they are cheap, comparable values that
// fit in maps and structs without indirection. They must nevertheless be
// compared with Equal: == on arrays stops at the first differing byte, and
// comparing a secret that way leaks timing.

// PrivateKey is a Curve25519 private key. Its zero value is not a usable
// key (see IsZero). It never prints itself: String, fmt verbs and slog all
// show "(redacted)"; use Base64 to export it on purpose.
type PrivateKey [KeySize]byte

// PublicKey is a Curve25519 public key. Compare with Equal, not ==.
// Its zero value is the all-zero point, which is low order (see IsLowOrder).
type PublicKey [KeySize]byte

// PresharedKey is the optional symmetric key mixed into the handshake (the
// psk of Noise_IKpsk2). The zero value means "no preshared key", exactly as
// in WireGuard. Like PrivateKey, it never prints itself.
type PresharedKey [KeySize]byte

var (
	// ErrInvalidKey is wrapped by every key parse error.
	ErrInvalidKey = errors.New("invalid key")
	// ErrLowOrderKey reports a public key in Curve25519's small subgroup.
	// A Diffie-Hellman with such a key yields a value the peer can predict,
	// so the protocol refuses it wherever a key arrives.
	ErrLowOrderKey = errors.New("low-order public key")
)

// redacted is what secret keys print as.
const redacted = "(redacted)"

// keyEncoding is standard base64 with padding, strict about the unused
// bits of the last character, as wg(8) is: one key has one spelling.
var keyEncoding = base64.StdEncoding.Strict()

// encodedKeyLen is the length of a base64 key: 32 bytes -> 44 characters.
var encodedKeyLen = keyEncoding.EncodedLen(KeySize)

// GeneratePrivateKey returns a new random private key, clamped as
// `wg genkey` clamps it, so the two tools produce interchangeable keys.
func GeneratePrivateKey() (PrivateKey, error) {
	var k PrivateKey
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("generate private key: %w", err)
	}
	k.clamp()
	return k, nil
}

// clamp applies the X25519 scalar clamping of RFC 7748. X25519 clamps on
// use anyway; storing the clamped form keeps the base64 identical to wg's.
func (k *PrivateKey) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// decodeKey decodes a 44-character base64 key. It returns only a reason;
// callers decide whether the input may appear in the error.
func decodeKey(dst *[KeySize]byte, s string) error {
	if len(s) != encodedKeyLen {
		return fmt.Errorf("want %d characters of base64, got %d", encodedKeyLen, len(s))
	}
	var buf [KeySize + 3]byte // DecodedLen(44) is 33 before padding is known
	n, err := keyEncoding.Decode(buf[:], []byte(s))
	if err != nil || n != KeySize {
		// The base64 error names an offset, never the text; still, keep
		// it out so the message is the same for every kind of key.
		return errors.New("not a base64-encoded 32-byte key")
	}
	copy(dst[:], buf[:KeySize])
	clear(buf[:])
	return nil
}

// ParsePrivateKey parses a base64 private key as `wg genkey` prints it.
// The error never contains the input, which is a secret.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	if err := decodeKey((*[KeySize]byte)(&k), s); err != nil {
		return PrivateKey{}, fmt.Errorf("parse private key: %v: %w", err, ErrInvalidKey)
	}
	return k, nil
}

// ParsePublicKey parses a base64 public key as `wg pubkey` prints it. It
// does not reject low-order keys; NewHandshake does, and validators can ask
// IsLowOrder to report them with a position.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if err := decodeKey((*[KeySize]byte)(&k), s); err != nil {
		return PublicKey{}, fmt.Errorf("parse public key %q: %v: %w", s, err, ErrInvalidKey)
	}
	return k, nil
}

// ParsePresharedKey parses a base64 preshared key as `wg genpsk` prints it.
// The error never contains the input, which is a secret.
func ParsePresharedKey(s string) (PresharedKey, error) {
	var k PresharedKey
	if err := decodeKey((*[KeySize]byte)(&k), s); err != nil {
		return PresharedKey{}, fmt.Errorf("parse preshared key: %v: %w", err, ErrInvalidKey)
	}
	return k, nil
}

// PublicKey returns the public key of k (X25519 with the base point).
func (k PrivateKey) PublicKey() PublicKey {
	pub, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		// The base point has prime order, so the result is never zero.
		panic("crypto: X25519 with the base point failed: " + err.Error())
	}
	return PublicKey(pub)
}

// sharedSecret returns X25519(k, pub). It fails with ErrLowOrderKey when the
// result is all zero, which happens exactly when pub is low order; WireGuard
// must refuse such a result rather than key a session with it.
func (k *PrivateKey) sharedSecret(pub PublicKey) ([KeySize]byte, error) {
	ss, err := curve25519.X25519(k[:], pub[:])
	if err != nil {
		return [KeySize]byte{}, ErrLowOrderKey
	}
	return [KeySize]byte(ss), nil
}

// lowOrderPoints are the u-coordinates of Curve25519's points of order 1,
// 2, 4 and 8 (on the curve and its twist), little endian, including the
// non-canonical encodings p and p+1: X25519 with any of them gives zero for
// every clamped scalar. X25519 ignores the top bit, so IsLowOrder masks it.
var lowOrderPoints = [...][KeySize]byte{
	{},     // 0
	{0: 1}, // 1
	{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
	{0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
		0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57},
	pMinus(1), // p-1
	pMinus(0), // p
	pPlus1(),  // p+1
}

// pMinus returns p-d for small d, little endian: p = 2^255 - 19.
func pMinus(d byte) (k [KeySize]byte) {
	for i := range k {
		k[i] = 0xff
	}
	k[0], k[31] = 0xed-d, 0x7f
	return k
}

func pPlus1() [KeySize]byte {
	k := pMinus(0)
	k[0]++
	return k
}

// IsLowOrder reports whether k is in Curve25519's small subgroup, that is,
// whether X25519 with it yields the all-zero value for every private key.
// It compares against the known points rather than doing a scalar
// multiplication, so checking a mesh of thousands of keys is cheap.
// Public keys are not secret, so the comparison need not be constant time.
func (k PublicKey) IsLowOrder() bool {
	masked := [KeySize]byte(k)
	masked[31] &= 0x7f
	return slices.Contains(lowOrderPoints[:], masked)
}

// Base64 returns k in the format of `wg genkey`. It is the one way to print
// a private key, meant for genkey and key files.
func (k PrivateKey) Base64() string { return keyEncoding.EncodeToString(k[:]) }

// String returns k in base64, the format of `wg pubkey` and of mesh files.
func (k PublicKey) String() string { return keyEncoding.EncodeToString(k[:]) }

// String returns "(redacted)"; a private key must not reach logs by accident.
func (k PrivateKey) String() string { return redacted }

// String returns "(redacted)"; a preshared key must not reach logs by accident.
func (k PresharedKey) String() string { return redacted }

// Format makes every fmt verb print "(redacted)". String alone is not
// enough: %#v would print the bytes.
func (k PrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// Format makes every fmt verb print "(redacted)".
func (k PresharedKey) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue keeps the key out of slog output, including JSON handlers.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// LogValue keeps the key out of slog output, including JSON handlers.
func (k PresharedKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// errMarshalSecret makes encoders fail loudly instead of writing a secret
// key as an array of numbers, which is what encoding/json would do.
var errMarshalSecret = errors.New("crypto: refusing to marshal a secret key; use Base64")

// MarshalText always fails: secret keys are written out only on purpose,
// with Base64.
func (k PrivateKey) MarshalText() ([]byte, error) { return nil, errMarshalSecret }

// MarshalText always fails: secret keys are written out only on purpose.
func (k PresharedKey) MarshalText() ([]byte, error) { return nil, errMarshalSecret }

// MarshalText returns the base64 form of k.
func (k PublicKey) MarshalText() ([]byte, error) {
	return keyEncoding.AppendEncode(nil, k[:]), nil
}

// UnmarshalText parses a base64 private key, as ParsePrivateKey does.
func (k *PrivateKey) UnmarshalText(text []byte) error {
	v, err := ParsePrivateKey(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// UnmarshalText parses a base64 public key, as ParsePublicKey does.
func (k *PublicKey) UnmarshalText(text []byte) error {
	v, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// UnmarshalText parses a base64 preshared key, as ParsePresharedKey does.
func (k *PresharedKey) UnmarshalText(text []byte) error {
	v, err := ParsePresharedKey(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Equal reports whether k and o are the same key, in constant time.
func (k PrivateKey) Equal(o PrivateKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// Equal reports whether k and o are the same key, in constant time.
func (k PublicKey) Equal(o PublicKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// Equal reports whether k and o are the same key, in constant time.
func (k PresharedKey) Equal(o PresharedKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// IsZero reports whether k is all zero (unset), in constant time.
func (k PrivateKey) IsZero() bool { return k.Equal(PrivateKey{}) }

// IsZero reports whether k is all zero (unset).
func (k PublicKey) IsZero() bool { return k.Equal(PublicKey{}) }

// IsZero reports whether k is all zero, meaning no preshared key, in
// constant time.
func (k PresharedKey) IsZero() bool { return k.Equal(PresharedKey{}) }
