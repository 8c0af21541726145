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
	seq := binary.BigEndian.Uint32(tcp[4:])
	ack := binary.BigEndian.Uint32(tcp[8:])
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
	ipLen := ipHeader(b, h.Version, src, dst, packet.ProtoTCP, 20)
	t := b[ipLen : ipLen+20]
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], rseq)
	binary.BigEndian.PutUint32(t[8:], rack)
	t[12], t[13] = 5<<4, flags
	clear(t[14:]) // window, checksum, urgent pointer
	binary.BigEndian.PutUint16(t[16:], ^fold(pseudoSum(b, h.Version, packet.ProtoTCP, 20)+sum(t)))
	return ipLen + 20
}

// icmpProhibited writes the ICMP or ICMPv6 administratively-prohibited
// error that answers h, quoting as much of h as fits.
func icmpProhibited(b []byte, h *packet.Packet) int {
	ipLen, proto, typ, code, limit := packet.IPv4HeaderLen, uint8(packet.ProtoICMP), uint8(icmpv4Unreachable), uint8(icmpv4AdminProhibited), maxICMPv4Answer
	if h.Version == 6 {
		ipLen, proto, typ, code, limit = packet.IPv6HeaderLen, packet.ProtoICMPv6, icmpv6Unreachable, icmpv6AdminProhibited, maxICMPv6Answer
	}
	quote := min(h.TotalLen, limit-ipLen-8, cap(b)-ipLen-8)
	b = b[:cap(b)]
	copy(b[ipLen+8:ipLen+8+quote], b[:quote]) // overlapping: copy moves
	src, dst := h.Dst, h.Src
	ipHeader(b, h.Version, src, dst, proto, 8+quote)
	m := b[ipLen : ipLen+8+quote]
	m[0], m[1] = typ, code
	clear(m[2:8]) // checksum, unused
	var s uint32
	if h.Version == 6 {
		s = pseudoSum(b, 6, proto, len(m)) // ICMPv6 covers a pseudo-header; ICMP does not
	}
	binary.BigEndian.PutUint16(m[2:], ^fold(s+sum(m)))
	return ipLen + len(m)
}

// ipHeader writes an IP header of version v from src to dst, carrying
// payload bytes of protocol proto, at the start of b, and returns its length.
func ipHeader(b []byte, v uint8, src, dst netip.Addr, proto uint8, payload int) int {
	if v == 4 {
		h := b[:packet.IPv4HeaderLen]
		h[0], h[1] = 0x45, 0
		binary.BigEndian.PutUint16(h[2:], uint16(packet.IPv4HeaderLen+payload))
		binary.BigEndian.PutUint32(h[4:], 0x4000) // ID 0, DF: the answer is small
		h[8], h[9] = answerTTL, proto
		clear(h[10:12])
		s, d := src.As4(), dst.As4()
		copy(h[12:16], s[:])
		copy(h[16:20], d[:])
		binary.BigEndian.PutUint16(h[10:], ^fold(sum(h)))
		return packet.IPv4HeaderLen
	}
	h := b[:packet.IPv6HeaderLen]
	binary.BigEndian.PutUint32(h[0:], 6<<28)
	binary.BigEndian.PutUint16(h[4:], uint16(payload))
	h[6], h[7] = proto, answerTTL
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return packet.IPv6HeaderLen
}

// pseudoSum is the unfolded sum of the pseudo-header of a transport
// header of length n and protocol proto behind the IP header at the start
// of b (RFC 793 3.1, RFC 8200 8.1).
func pseudoSum(b []byte, v uint8, proto uint8, n int) uint32 {
	addrs := b[12:20]
	if v == 6 {
		addrs = b[8:40]
	}
	return sum(addrs) + uint32(proto) + uint32(n)
}

// sum adds b as big-endian 16-bit words, the last byte padded with zero.
func sum(b []byte) uint32 {
	var s uint32
	for len(b) >= 2 {
		s += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold folds a 32-bit sum into 16 bits with end-around carry.
func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
