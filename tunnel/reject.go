package tunnel

import (
	"encoding/binary"
	"net/netip"

	"github.com/overlay-node/overlay-node/packet"
)

// Rejecting a denied outbound packet: the answer a firewall on the path
// would send, written into the TUN as if it came from the destination, so
// that the local sender learns at once. TCP gets a RST (RFC 793, "Reset
// Generation"), which fails a connect() with ECONNREFUSED and aborts an
// established connection; everything else gets ICMP destination
// unreachable, administratively prohibited (RFC 1812 5.2.7.1; for ICMPv6
// RFC 4443 3.1, "communication with destination administratively
// prohibited"), which Linux treats as a hard error.
//
// The answer is built in place, in the buffer of the packet it answers,
// which the packet path owns and no longer needs: nothing allocates.

// Where the answer's ICMP and TCP fields are, from the start of the
// transport header: the parts packet does not name.
const (
	icmpTypeOff     = 0
	icmpCodeOff     = 1
	icmpChecksumOff = 2
	icmpHeaderLen   = 8 // type, code, checksum and 4 unused bytes
	tcpSrcPortOff   = 0
	tcpDstPortOff   = 2
)

// ICMP types and codes of the answer.
const (
	icmpv4Unreachable     = 3
	icmpv4AdminProhibited = 13
	icmpv6Unreachable     = 1
	icmpv6AdminProhibited = 1
)

// Quotes are bounded so that the answer fits the minimum MTU of its
// family, as RFC 1812 4.3.2.3 and RFC 4443 2.4 ask.
const (
	maxICMPv4Answer = 576
	maxICMPv6Answer = 1280
	answerTTL       = 64
)

// rejectInPlace overwrites b, which starts with the denied packet h
// (b[:h.TotalLen]) and has room behind it up to cap(b), with the answer to
// h's sender, and returns the answer's length; 0 when h gets no answer:
// an ICMP error, a TCP RST, a non-first fragment, or a packet from an
// address no answer can go to.
func rejectInPlace(b []byte, h *packet.Packet) int {
	switch {
	case h.IsNonFirstFragment(), h.IsICMPError(), !h.Src.IsGlobalUnicast(), h.Dst.IsMulticast():
		return 0
	case h.Proto == packet.ProtoTCP:
		if h.TCPFlags&packet.TCPFlagRST != 0 || !h.HasPorts {
			return 0
		}
		return tcpReset(b, h)
	}
	return icmpProhibited(b, h)
}

// tcpReset writes the RST that answers TCP segment h (RFC 793, page 36:
// if the segment has ACK, <SEQ=SEG.ACK><CTL=RST>; otherwise
// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>).
func tcpReset(b []byte, h *packet.Packet) int {
	tcp := b[h.HeaderLen:]
	seq := binary.BigEndian.Uint32(tcp[packet.TCPSeqOff:])
	ack := binary.BigEndian.Uint32(tcp[packet.TCPAckOff:])
	segLen := uint32(h.TotalLen - h.HeaderLen - int(h.TCPHeaderLen))
	if h.TCPFlags&packet.TCPFlagSYN != 0 {
		segLen++
	}
	if h.TCPFlags&packet.TCPFlagFIN != 0 {
		segLen++
	}
	var rseq, rack uint32
	flags := uint8(packet.TCPFlagRST)
	if h.TCPFlags&packet.TCPFlagACK != 0 {
		rseq = ack
	} else {
		rack, flags = seq+segLen, flags|packet.TCPFlagACK
	}
	src, dst, sport, dport := h.Dst, h.Src, h.DstPort, h.SrcPort
	ipLen := ipHeader(b, h.Version, src, dst, packet.ProtoTCP, packet.TCPMinHeaderLen)
	t := b[ipLen : ipLen+packet.TCPMinHeaderLen]
	binary.BigEndian.PutUint16(t[tcpSrcPortOff:], sport)
	binary.BigEndian.PutUint16(t[tcpDstPortOff:], dport)
	binary.BigEndian.PutUint32(t[packet.TCPSeqOff:], rseq)
	binary.BigEndian.PutUint32(t[packet.TCPAckOff:], rack)
	t[packet.TCPFlagsOff-1], t[packet.TCPFlagsOff] = packet.TCPMinHeaderLen/4<<4, flags
	clear(t[packet.TCPWindowOff:]) // window, checksum, urgent pointer
	binary.BigEndian.PutUint16(t[packet.TCPChecksumOff:], ^packet.Fold(packet.Sum(t, pseudoSum(b, h.Version, packet.ProtoTCP, len(t)))))
	return ipLen + len(t)
}

// icmpProhibited writes the ICMP or ICMPv6 administratively-prohibited
// error that answers h, quoting as much of h as fits.
func icmpProhibited(b []byte, h *packet.Packet) int {
	ipLen, proto, typ, code, limit := packet.IPv4HeaderLen, uint8(packet.ProtoICMP), uint8(icmpv4Unreachable), uint8(icmpv4AdminProhibited), maxICMPv4Answer
	if h.Version == 6 {
		ipLen, proto, typ, code, limit = packet.IPv6HeaderLen, packet.ProtoICMPv6, icmpv6Unreachable, icmpv6AdminProhibited, maxICMPv6Answer
	}
	quote := min(h.TotalLen, limit-ipLen-icmpHeaderLen, cap(b)-ipLen-icmpHeaderLen)
	b = b[:cap(b)]
	copy(b[ipLen+icmpHeaderLen:ipLen+icmpHeaderLen+quote], b[:quote]) // overlapping: copy moves
	src, dst := h.Dst, h.Src
	ipHeader(b, h.Version, src, dst, proto, icmpHeaderLen+quote)
	m := b[ipLen : ipLen+icmpHeaderLen+quote]
	m[icmpTypeOff], m[icmpCodeOff] = typ, code
	clear(m[icmpChecksumOff:icmpHeaderLen]) // checksum, unused
	var s uint64
	if h.Version == 6 {
		s = pseudoSum(b, 6, proto, len(m)) // ICMPv6 covers a pseudo-header; ICMP does not
	}
	binary.BigEndian.PutUint16(m[icmpChecksumOff:], ^packet.Fold(packet.Sum(m, s)))
	return ipLen + len(m)
}

// ipHeader writes an IP header of version v from src to dst, carrying
// payload bytes of protocol proto, at the start of b, and returns its length.
func ipHeader(b []byte, v uint8, src, dst netip.Addr, proto uint8, payload int) int {
	if v == 4 {
		h := b[:packet.IPv4HeaderLen]
		h[0], h[packet.IPv4TOSOff] = 4<<4|packet.IPv4HeaderLen/4, 0
		binary.BigEndian.PutUint16(h[packet.IPv4TotalLenOff:], uint16(packet.IPv4HeaderLen+payload))
		binary.BigEndian.PutUint16(h[packet.IPv4IDOff:], 0)
		binary.BigEndian.PutUint16(h[packet.IPv4FlagsOff:], packet.IPv4FlagDF<<8) // the answer is small
		h[packet.IPv4TTLOff], h[packet.IPv4ProtoOff] = answerTTL, proto
		clear(h[packet.IPv4ChecksumOff : packet.IPv4ChecksumOff+2])
		s, d := src.As4(), dst.As4()
		copy(h[packet.IPv4AddrsOff:], s[:])
		copy(h[packet.IPv4AddrsOff+4:], d[:])
		binary.BigEndian.PutUint16(h[packet.IPv4ChecksumOff:], ^packet.Fold(packet.Sum(h, 0)))
		return packet.IPv4HeaderLen
	}
	h := b[:packet.IPv6HeaderLen]
	binary.BigEndian.PutUint32(h, 6<<28) // version; traffic class and flow label 0
	binary.BigEndian.PutUint16(h[packet.IPv6PayloadLenOff:], uint16(payload))
	h[packet.IPv6NextHeaderOff], h[packet.IPv6HopLimitOff] = proto, answerTTL
	s, d := src.As16(), dst.As16()
	copy(h[packet.IPv6AddrsOff:], s[:])
	copy(h[packet.IPv6AddrsOff+16:], d[:])
	return packet.IPv6HeaderLen
}

// pseudoSum is the unfolded sum of the pseudo-header of a transport
// header of length n and protocol proto behind the IP header of version v
// at the start of b (RFC 793 3.1, RFC 8200 8.1).
func pseudoSum(b []byte, v uint8, proto uint8, n int) uint64 {
	addrs := b[packet.IPv4AddrsOff : packet.IPv4AddrsOff+8]
	if v == 6 {
		addrs = b[packet.IPv6AddrsOff : packet.IPv6AddrsOff+32]
	}
	return packet.Sum(addrs, uint64(proto)+uint64(n))
}
