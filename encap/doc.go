// Package encap owns WireGuard's outer framing: the byte layout of the four
// message types that travel in UDP datagrams, and the batched UDP transport
// that carries them.
//
// # Messages
//
// Every message starts with a 4-byte little-endian type field. Only the low
// byte is used today; the spec reserves the other three and requires them to
// be zero, so a datagram whose reserved bytes are set is not a WireGuard
// message and is rejected like any unknown type.
//
//	type 1  handshake initiation  148 bytes exactly
//	type 2  handshake response     92 bytes exactly
//	type 3  cookie reply           64 bytes exactly
//	type 4  transport data         16-byte header + ciphertext (>= 16-byte tag)
//
// The handshake messages are fixed-size, so anything of another length is
// dropped before any cryptography runs. A transport message is the header
// (type, receiver index, 64-bit counter) followed by the sealed, padded inner
// packet; the smallest one is an empty keepalive of 32 bytes.
//
// [Classify] is the receive path's first step: it looks at the type and the
// length, nothing else, and returns the type or a sentinel error that names
// the reason the datagram is dropped. The Unmarshal methods then copy the
// fields of a classified handshake message into a caller-owned struct, and
// [ParseTransportHeader] reads the two header fields the engine routes and
// replays on. On the send side, the MarshalTo methods and
// [PutTransportHeader] write into buffers the caller already owns, so that a
// transport message is built in place in front of the sealed payload.
//
// None of these functions allocate, and none of them keep a reference to the
// buffers they are given: they run once per datagram on the hot path, and
// their errors are bare sentinels for the same reason (wrapping would
// allocate, and the caller only needs the reason to count the drop).
//
// The Noise contents of the handshake messages (ephemeral key, encrypted
// static key and timestamp, cookie) are package crypto's business; this
// package only frames them, and the MAC fields it exposes are computed and
// checked by crypto over the whole marshalled message.
//
// # Transport
//
// [Bind] is the batched UDP transport, and [NewBind] returns the Linux one:
// recvmmsg with UDP GRO, whose trains reach the engine whole with their
// segment size, and sendmmsg with UDP GSO, whose trains are gathered from
// the engine's buffers without a copy. Package encaptest provides an
// in-memory pair for tests that coalesces like GRO.
package encap
