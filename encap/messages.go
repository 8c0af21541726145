package encap

import (
	"encoding/binary"
	"errors"

	"github.com/overlay-node/overlay-node/crypto"
)

// Message types, as carried in the low byte of the type field.
const (
	TypeInitiation  = 1 // handshake initiation
	TypeResponse    = 2 // handshake response
	TypeCookieReply = 3 // cookie reply, sent instead of a response under load
	TypeTransport   = 4 // transport data (and keepalives)
)

// Message sizes fixed by the specification.
const (
	InitiationSize      = 148 // exact size of a handshake initiation
	ResponseSize        = 92  // exact size of a handshake response
	CookieReplySize     = 64  // exact size of a cookie reply
	TransportHeaderSize = 16  // type, receiver index and counter before the ciphertext

	// TransportOverhead is what a transport message adds to its padded
	// plaintext: the header in front and the Poly1305 tag behind.
	TransportOverhead = TransportHeaderSize + crypto.TagSize

	// TransportMinSize is the size of the smallest transport message, an
	// empty keepalive: a header and a tag around no plaintext.
	TransportMinSize = TransportOverhead

	// DefaultMTU is the inner MTU that fits a 1500-byte link whichever
	// family carries the tunnel: 1500 less an IPv6 header (40), a UDP header
	// (8) and TransportOverhead.
	DefaultMTU = 1500 - 40 - 8 - TransportOverhead

	// PaddingMultiple is the block the plaintext of a transport message is
	// padded to, so that its length leaks less about the inner packet.
	PaddingMultiple = 16
)

// Offsets into a transport message, for code that reads or writes the header
// in place rather than through [ParseTransportHeader].
const (
	TransportOffsetReceiver = 4 // little-endian uint32 receiver index
	TransportOffsetCounter  = 8 // little-endian uint64 nonce counter
)

// Offsets of the MAC fields in the marshalled handshake messages. crypto
// computes MAC1 over everything before it and MAC2 over everything before
// MAC2, so these are also the lengths of those MACed prefixes.
const (
	InitiationOffsetMAC1 = InitiationSize - 2*crypto.MACSize // 116
	InitiationOffsetMAC2 = InitiationSize - crypto.MACSize   // 132
	ResponseOffsetMAC1   = ResponseSize - 2*crypto.MACSize   // 60
	ResponseOffsetMAC2   = ResponseSize - crypto.MACSize     // 76
)

// Sentinel errors, one per reason a datagram is dropped before decryption.
// They are returned bare, never wrapped, so that returning them allocates
// nothing; callers branch with == or errors.Is and count the drop by reason.
var (
	// ErrTooShort reports a datagram too short to hold a type field, or a
	// transport message shorter than TransportMinSize.
	ErrTooShort = errors.New("encap: message too short")

	// ErrUnknownType reports a type field that is not one of the four message
	// types, including a known type whose reserved upper bytes are not zero.
	ErrUnknownType = errors.New("encap: unknown message type")

	// ErrBadLength reports a handshake message whose length is not exactly
	// the size its type fixes.
	ErrBadLength = errors.New("encap: bad message length")

	// ErrWrongType reports a valid message handed to the parser of another
	// type; a caller that dispatches on [Classify] never sees it.
	ErrWrongType = errors.New("encap: wrong message type")
)

// Field offsets inside the handshake messages, derived from crypto's field
// sizes so that the layout and the structs cannot drift apart.
const (
	initOffEphemeral = 8
	initOffStatic    = initOffEphemeral + crypto.KeySize
	initOffTimestamp = initOffStatic + crypto.EncryptedStatic
	initEnd          = initOffTimestamp + crypto.EncryptedTime + 2*crypto.MACSize

	respOffEphemeral = 12
	respOffEmpty     = respOffEphemeral + crypto.KeySize
	respEnd          = respOffEmpty + crypto.EncryptedNothing + 2*crypto.MACSize

	cookieOffNonce  = 8
	cookieOffCookie = cookieOffNonce + crypto.CookieNonceSize
	cookieEnd       = cookieOffCookie + crypto.EncryptedCookie
)

// Compile-time checks that the derived layouts add up to the sizes the
// specification fixes: a negative array length does not compile.
var (
	_ [initEnd - InitiationSize]struct{}
	_ [InitiationSize - initEnd]struct{}
	_ [respEnd - ResponseSize]struct{}
	_ [ResponseSize - respEnd]struct{}
	_ [cookieEnd - CookieReplySize]struct{}
	_ [CookieReplySize - cookieEnd]struct{}
)

// Classify reports the type of the message in b after checking that its
// length is valid for that type. It reads only the type field and the length,
// so it is cheap enough to run on every datagram before anything else; the
// error says why b is not a message and is meant to be counted as the drop
// reason.
func Classify(b []byte) (uint32, error) {
	if len(b) < 4 {
		return 0, ErrTooShort
	}
	t := binary.LittleEndian.Uint32(b)
	switch t {
	case TypeInitiation:
		if len(b) != InitiationSize {
			return 0, ErrBadLength
		}
	case TypeResponse:
		if len(b) != ResponseSize {
			return 0, ErrBadLength
		}
	case TypeCookieReply:
		if len(b) != CookieReplySize {
			return 0, ErrBadLength
		}
	case TypeTransport:
		if len(b) < TransportMinSize {
			return 0, ErrTooShort
		}
	default:
		// Reading the field as a whole uint32 folds the reserved-bytes
		// check into this case: type 1 with a reserved bit set is not 1.
		return 0, ErrUnknownType
	}
	return t, nil
}

// checkHeader is the common prefix of every Unmarshal: the exact length first
// (as Classify does for handshakes), then the type.
func checkHeader(b []byte, want uint32, size int) error {
	if len(b) != size {
		if len(b) < 4 {
			return ErrTooShort
		}
		return ErrBadLength
	}
	return checkType(binary.LittleEndian.Uint32(b), want)
}

// checkType tells a message of another known type apart from garbage, so the
// caller's drop counter names the right reason.
func checkType(got, want uint32) error {
	switch {
	case got == want:
		return nil
	case got >= TypeInitiation && got <= TypeTransport:
		return ErrWrongType
	default:
		return ErrUnknownType
	}
}

// putType writes a type field with its reserved bytes zeroed.
func putType(b []byte, t uint32) {
	binary.LittleEndian.PutUint32(b, t)
}

// Initiation is a handshake initiation (type 1): the sender's index for the
// session it proposes, the Noise fields crypto produces and consumes, and the
// two MACs. The zero value marshals to a syntactically valid message that no
// peer will accept.
type Initiation struct {
	Sender uint32 // index the responder must put in its Response.Receiver
	crypto.Initiation
	MAC1 [crypto.MACSize]byte
	MAC2 [crypto.MACSize]byte // all zero unless the initiator holds a cookie
}

// MarshalTo writes m into the first InitiationSize bytes of b and returns
// them. It panics if b is shorter: buffers are sized by the caller once, so a
// short one is a programming error, not a runtime condition.
func (m *Initiation) MarshalTo(b []byte) []byte {
	b = b[:InitiationSize]
	putType(b, TypeInitiation)
	binary.LittleEndian.PutUint32(b[4:], m.Sender)
	copy(b[initOffEphemeral:], m.Ephemeral[:])
	copy(b[initOffStatic:], m.Static[:])
	copy(b[initOffTimestamp:], m.Timestamp[:])
	copy(b[InitiationOffsetMAC1:], m.MAC1[:])
	copy(b[InitiationOffsetMAC2:], m.MAC2[:])
	return b
}

// Unmarshal copies the fields of the initiation in b into m. b must be
// exactly InitiationSize bytes of type 1; on error m is left unchanged.
func (m *Initiation) Unmarshal(b []byte) error {
	if err := checkHeader(b, TypeInitiation, InitiationSize); err != nil {
		return err
	}
	m.Sender = binary.LittleEndian.Uint32(b[4:])
	copy(m.Ephemeral[:], b[initOffEphemeral:])
	copy(m.Static[:], b[initOffStatic:])
	copy(m.Timestamp[:], b[initOffTimestamp:])
	copy(m.MAC1[:], b[InitiationOffsetMAC1:])
	copy(m.MAC2[:], b[InitiationOffsetMAC2:])
	return nil
}

// Response is a handshake response (type 2): the responder's own index, the
// initiator's index it answers, the Noise fields and the two MACs.
type Response struct {
	Sender   uint32 // responder's index, the receiver of the initiator's transport messages
	Receiver uint32 // the Initiation.Sender this response answers
	crypto.Response
	MAC1 [crypto.MACSize]byte
	MAC2 [crypto.MACSize]byte
}

// MarshalTo writes m into the first ResponseSize bytes of b and returns them.
// It panics if b is shorter.
func (m *Response) MarshalTo(b []byte) []byte {
	b = b[:ResponseSize]
	putType(b, TypeResponse)
	binary.LittleEndian.PutUint32(b[4:], m.Sender)
	binary.LittleEndian.PutUint32(b[8:], m.Receiver)
	copy(b[respOffEphemeral:], m.Ephemeral[:])
	copy(b[respOffEmpty:], m.Empty[:])
	copy(b[ResponseOffsetMAC1:], m.MAC1[:])
	copy(b[ResponseOffsetMAC2:], m.MAC2[:])
	return b
}

// Unmarshal copies the fields of the response in b into m. b must be exactly
// ResponseSize bytes of type 2; on error m is left unchanged.
func (m *Response) Unmarshal(b []byte) error {
	if err := checkHeader(b, TypeResponse, ResponseSize); err != nil {
		return err
	}
	m.Sender = binary.LittleEndian.Uint32(b[4:])
	m.Receiver = binary.LittleEndian.Uint32(b[8:])
	copy(m.Ephemeral[:], b[respOffEphemeral:])
	copy(m.Empty[:], b[respOffEmpty:])
	copy(m.MAC1[:], b[ResponseOffsetMAC1:])
	copy(m.MAC2[:], b[ResponseOffsetMAC2:])
	return nil
}

// CookieReply is a cookie reply (type 3), which a responder under load sends
// instead of a response: the index of the handshake message it refuses and
// the encrypted cookie the sender must MAC its retry with.
type CookieReply struct {
	Receiver uint32 // the sender index of the refused initiation or response
	crypto.CookieReply
}

// MarshalTo writes m into the first CookieReplySize bytes of b and returns
// them. It panics if b is shorter.
func (m *CookieReply) MarshalTo(b []byte) []byte {
	b = b[:CookieReplySize]
	putType(b, TypeCookieReply)
	binary.LittleEndian.PutUint32(b[4:], m.Receiver)
	copy(b[cookieOffNonce:], m.Nonce[:])
	copy(b[cookieOffCookie:], m.Cookie[:])
	return b
}

// Unmarshal copies the fields of the cookie reply in b into m. b must be
// exactly CookieReplySize bytes of type 3; on error m is left unchanged.
func (m *CookieReply) Unmarshal(b []byte) error {
	if err := checkHeader(b, TypeCookieReply, CookieReplySize); err != nil {
		return err
	}
	m.Receiver = binary.LittleEndian.Uint32(b[4:])
	copy(m.Nonce[:], b[cookieOffNonce:])
	copy(m.Cookie[:], b[cookieOffCookie:])
	return nil
}

// PutTransportHeader writes the header of a transport message into the first
// TransportHeaderSize bytes of b, in front of where the ciphertext goes, so
// that the send path builds the datagram in place. It panics if b is shorter.
func PutTransportHeader(b []byte, receiver uint32, counter uint64) {
	b = b[:TransportHeaderSize]
	putType(b, TypeTransport)
	binary.LittleEndian.PutUint32(b[TransportOffsetReceiver:], receiver)
	binary.LittleEndian.PutUint64(b[TransportOffsetCounter:], counter)
}

// ParseTransportHeader returns the receiver index and counter of the
// transport message in b, whose ciphertext is b[TransportHeaderSize:]. It
// checks the type and the minimum length itself, so it is safe on bytes that
// did not go through [Classify]. The counter is untrusted until the
// ciphertext has been opened with it.
func ParseTransportHeader(b []byte) (receiver uint32, counter uint64, err error) {
	if len(b) < TransportMinSize {
		return 0, 0, ErrTooShort
	}
	if err := checkType(binary.LittleEndian.Uint32(b), TypeTransport); err != nil {
		return 0, 0, err
	}
	receiver = binary.LittleEndian.Uint32(b[TransportOffsetReceiver:])
	counter = binary.LittleEndian.Uint64(b[TransportOffsetCounter:])
	return receiver, counter, nil
}

// PaddedLen returns the length an inner packet of n bytes is padded to before
// sealing: n rounded up to a multiple of PaddingMultiple, but never beyond
// mtu, because the padding must not push the datagram past what the path was
// sized for. A packet already longer than mtu is not padded at all. mtu <= 0
// means no limit; n <= 0 (a keepalive) gives 0.
func PaddedLen(n, mtu int) int {
	if n <= 0 {
		return 0
	}
	p := (n + PaddingMultiple - 1) &^ (PaddingMultiple - 1)
	if mtu > 0 && p > mtu {
		p = max(n, mtu)
	}
	return p
}
