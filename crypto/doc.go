// Package crypto owns everything secret in overlay-node: keys, WireGuard's
// Noise_IKpsk2 handshake, the mac1/mac2 and cookie defence, and the
// transport keypairs with their counters and replay window.
//
// It implements the protocol of the WireGuard whitepaper exactly, so that
// stock WireGuard peers interoperate; it invents no cryptography and takes
// its primitives from golang.org/x/crypto (Curve25519, BLAKE2s,
// ChaCha20-Poly1305, XChaCha20-Poly1305) and its replay window and TAI64N
// type from golang.zx2c4.com/wireguard.
//
// The package knows nothing of message framing, indices, sockets or time
// beyond what it is told: callers (encap and tunnel) frame the structs in
// messages.go, pick sender and receiver indices, and pass the current time
// in, which keeps every timer-driven rule testable.
//
// The pieces, in the order a session uses them:
//
//   - keys.go: PrivateKey, PublicKey, PresharedKey, with base64 in the
//     format of wg(8), constant-time Equal, and secret keys that refuse to
//     print themselves.
//   - kdf.go and noise.go: HASH, MAC, HMAC, KDF1..3 and the IKpsk2 pattern,
//     generic over prologue and payloads so the public Noise test vector
//     checks the same code that WireGuard messages use.
//   - handshake.go: Identity (our static key) and Handshake (the state with
//     one peer), with WireGuard's timestamp replay and flood checks.
//   - cookie.go: CookieChecker for incoming messages, CookieGenerator for
//     outgoing ones.
//   - keypair.go: Keypair, the per-session AEADs, send counter and replay
//     window; its Seal and Open run per packet and allocate nothing.
//
// Every rejection is reported as an exported sentinel error (ErrDecrypt,
// ErrStaleTimestamp, ...) so the engine can count drops by reason, and no
// input, however malformed, makes this package panic.
package crypto
