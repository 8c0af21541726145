package packet

import "encoding/binary"

// Where the header fields are that the TUN offloads compare or rewrite
// when they coalesce packets (GRO) or cut a super-packet (GSO), so that
// they name them rather than count bytes. Parse reads the rest.

// Offsets in the IPv4 header.
const (
	IPv4TOSOff      = 1
	IPv4TotalLenOff = 2
	IPv4IDOff       = 4
	IPv4FlagsOff    = 6 // the 16-bit flags and fragment offset
	IPv4TTLOff      = 8
	IPv4ProtoOff    = 9
	IPv4ChecksumOff = 10
	IPv4AddrsOff    = 12 // the source address, then the destination

	IPv4FlagDF = 0x40 // don't fragment, in the byte at IPv4FlagsOff
)

// Offsets in the IPv6 header.
const (
	IPv6FlowEnd       = 4 // version, traffic class and flow label end here
	IPv6PayloadLenOff = 4
	IPv6NextHeaderOff = 6
	IPv6HopLimitOff   = 7
	IPv6AddrsOff      = 8 // the source address, then the destination
)

// Offsets in the TCP and UDP headers, from the transport header's start
// (Packet.HeaderLen), and their lengths.
const (
	TCPSeqOff       = 4
	TCPAckOff       = 8
	TCPFlagsOff     = 13
	TCPWindowOff    = 14
	TCPChecksumOff  = 16
	TCPMinHeaderLen = 20 // options, if any, start here

	UDPLenOff      = 4
	UDPChecksumOff = 6
	UDPHeaderLen   = 8
)

// MaxIPv4Len is the longest IPv4 packet; an IPv6 packet may be
// IPv6HeaderLen longer, its length field leaving out the fixed header.
const MaxIPv4Len = 1<<16 - 1

// SetTotalLen writes n as the length of the IPv4 or IPv6 packet at the
// start of b: IPv4's total length, or IPv6's payload length (n less the
// fixed header, extension headers included). The offloads call it on a
// packet they lengthen or cut, and GSO before parsing a super-packet,
// whose length is what the device read. It returns ErrShort or
// ErrVersion for bytes that are no IP header, and ErrTruncated when n is
// shorter than the fixed header or longer than the field can say.
func SetTotalLen(b []byte, n int) error {
	if len(b) == 0 {
		return ErrShort
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < IPv4HeaderLen {
			return ErrShort
		}
		if n < IPv4HeaderLen || n > MaxIPv4Len {
			return ErrTruncated
		}
		binary.BigEndian.PutUint16(b[IPv4TotalLenOff:], uint16(n))
	case 6:
		if len(b) < IPv6HeaderLen {
			return ErrShort
		}
		if n < IPv6HeaderLen || n > IPv6HeaderLen+MaxIPv4Len {
			return ErrTruncated
		}
		binary.BigEndian.PutUint16(b[IPv6PayloadLenOff:], uint16(n-IPv6HeaderLen))
	default:
		return ErrVersion
	}
	return nil
}

// Addrs returns the source and destination addresses as they stand in b,
// the packet p was parsed from: 8 bytes for IPv4, 32 for IPv6. The TCP and
// UDP checksums' pseudo-header starts with them.
func (p Packet) Addrs(b []byte) []byte {
	if p.Version == 4 {
		return b[IPv4AddrsOff : IPv4AddrsOff+8]
	}
	return b[IPv6AddrsOff : IPv6AddrsOff+32]
}
