package crypto

// Sizes of the Noise fields that WireGuard's handshake messages carry.
const (
	KeySize          = 32                      // Curve25519 keys and BLAKE2s hashes
	TagSize          = 16                      // Poly1305 tag
	TimestampSize    = 12                      // TAI64N
	EncryptedStatic  = KeySize + TagSize       // 48
	EncryptedTime    = TimestampSize + TagSize // 28
	EncryptedNothing = TagSize                 // 16
	CookieSize       = 16
	EncryptedCookie  = CookieSize + TagSize // 32
	CookieNonceSize  = 24                   // XChaCha20-Poly1305 nonce
	MACSize          = 16
)

// Initiation is the Noise part of a handshake initiation (message type 1):
// everything except the type, sender index and MACs, which encap frames.
type Initiation struct {
	Ephemeral PublicKey
	Static    [EncryptedStatic]byte
	Timestamp [EncryptedTime]byte
}

// Response is the Noise part of a handshake response (message type 2).
type Response struct {
	Ephemeral PublicKey
	Empty     [EncryptedNothing]byte
}

// CookieReply is the encrypted part of a cookie reply (message type 3).
type CookieReply struct {
	Nonce  [CookieNonceSize]byte
	Cookie [EncryptedCookie]byte
}
