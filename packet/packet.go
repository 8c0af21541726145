// Package packet parses the headers of an IPv4 or IPv6 packet once, into a
// small value that routing, the source check, the firewall and the offloads
// (GRO, GSO) all read: addresses, the upper-layer protocol past IPv4 options
// and IPv6 extension headers, the offsets and lengths of the headers,
// fragmentation, ports, TCP flags and ICMP type, code and echo identifier.
//
// Parsing never reads past the buffer, never allocates and never panics:
// bytes that cannot be a packet give one of the exported sentinel errors, so
// a caller can count drops by reason. Checksums are not verified.
package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Header sizes and protocol numbers (IANA "Assigned Internet Protocol
// Numbers") that callers of this package branch on.
const (
	IPv4HeaderLen = 20 // an IPv4 header without options
	IPv6HeaderLen = 40 // the fixed IPv6 header

	ProtoICMP     = 1
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoICMPv6   = 58
	ProtoSCTP     = 132
	ProtoUDPLite  = 136
	ProtoNoNextV6 = 59 // IPv6 "no next header"
)

// TCP flags, as in Packet.TCPFlags.
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// MaxExtHeaders bounds the IPv6 extension headers Parse walks. Real
// packets carry a few at most; a longer chain is refused rather than walked.
const MaxExtHeaders = 8

// IPv6 extension headers that Parse walks.
const (
	extHopByHop = 0
	extRouting  = 43
	extFragment = 44
	extDestOpts = 60
)

// Fixed lengths of the transport headers this package reads.
const (
	tcpMinLen  = 20
	udpLen     = 8
	sctpMinLen = 12 // the SCTP common header
	icmpMinLen = 8  // type, code, checksum and the 4-byte rest of header
	// embeddedL4Len is how much of the original transport header an ICMP
	// error must quote (RFC 792); enough for the ports or echo identifier.
	embeddedL4Len = 8
)

// Errors returned by Parse and ParseEmbedded, one per reason a packet is
// refused, so callers can count them apart.
var (
	ErrShort             = errors.New("packet: shorter than the fixed IP header")
	ErrVersion           = errors.New("packet: IP version is neither 4 nor 6")
	ErrIPHeaderLen       = errors.New("packet: IPv4 header length below 20 or beyond the total length")
	ErrTruncated         = errors.New("packet: total length per the header exceeds the buffer")
	ErrExtHeader         = errors.New("packet: IPv6 extension header runs past the packet or repeats the fragment header")
	ErrTooManyExtHeaders = errors.New("packet: IPv6 extension header chain too long")
	ErrFragment          = errors.New("packet: fragment reassembles beyond 65535 bytes")
	ErrTransportShort    = errors.New("packet: transport header cut short")
	ErrTCPHeaderLen      = errors.New("packet: TCP data offset below 5 or past the packet")
)

// Packet is what Parse read from one IP packet's headers. It is a value:
// it holds no reference to the buffer, and two Packets are equal when they
// describe the same headers. Fields that do not apply are zero.
//
// The zero Packet is no packet: Version 0 and invalid addresses. Parse
// returns it, and only it, with an error.
type Packet struct {
	// IP layer.
	Version  uint8      // 4 or 6
	Proto    uint8      // the upper-layer protocol: IPv4's protocol, or IPv6's last next header after the extension headers
	Src, Dst netip.Addr // Is4 for IPv4, Is6 for IPv6 (an IPv4-mapped IPv6 address stays IPv6)
	// HeaderLen is the offset of the transport header: the IPv4 header
	// with its options, or the IPv6 header with the extension headers
	// walked (up to and including the fragment header of a non-first
	// fragment, whose payload has no headers).
	HeaderLen int
	// TotalLen is the packet's length per its header. Parse accepts a
	// buffer longer than that (WireGuard padding, trailing bytes): the
	// packet is buf[:TotalLen]. From ParseEmbedded it may exceed the buffer.
	TotalLen int

	// Fragmentation. An IPv6 packet without a fragment header, like an
	// IPv4 packet with offset 0 and MF clear, is not a fragment.
	FragOff       uint16 // offset of this fragment's data in bytes (a multiple of 8)
	MoreFragments bool   // MF: more fragments follow
	FragID        uint32 // IPv4's 16-bit identification, or the IPv6 fragment header's 32-bit one

	// Transport layer, read only from a packet that starts at transport
	// offset 0: not from a non-first fragment.
	HasPorts     bool   // TCP, UDP, UDP-Lite or SCTP: SrcPort and DstPort are set
	SrcPort      uint16 //
	DstPort      uint16 //
	TCPFlags     uint8  // TCPFlag* bits (not from ParseEmbedded)
	TCPHeaderLen uint8  // TCP data offset in bytes, options included (not from ParseEmbedded)
	HasICMP      bool   // ICMP over IPv4 or ICMPv6 over IPv6: ICMPType and ICMPCode are set
	ICMPType     uint8  //
	ICMPCode     uint8  //
	ICMPID       uint16 // the identifier of an echo request or reply
}

// IsFragment reports whether p is a fragment of a larger datagram.
func (p Packet) IsFragment() bool { return p.FragOff != 0 || p.MoreFragments }

// IsNonFirstFragment reports whether p is a fragment other than the first,
// which carries no transport header.
func (p Packet) IsNonFirstFragment() bool { return p.FragOff != 0 }

// IsICMPEcho reports whether p is an ICMP or ICMPv6 echo request or reply,
// whose ICMPID identifies the flow.
func (p Packet) IsICMPEcho() bool {
	if !p.HasICMP {
		return false
	}
	if p.Version == 4 {
		return p.ICMPType == 0 || p.ICMPType == 8
	}
	return p.ICMPType == 128 || p.ICMPType == 129
}

// IsICMPError reports whether p is an ICMP or ICMPv6 error that quotes the
// packet it is about: destination unreachable, time exceeded or parameter
// problem, and for ICMPv6 also packet too big.
func (p Packet) IsICMPError() bool {
	if !p.HasICMP {
		return false
	}
	if p.Version == 4 {
		return p.ICMPType == 3 || p.ICMPType == 11 || p.ICMPType == 12
	}
	return p.ICMPType >= 1 && p.ICMPType <= 4
}

// EmbeddedOffset returns the offset in the packet of the original packet an
// ICMP error quotes, or 0 if p is not an ICMP error. The caller parses
// buf[off:p.TotalLen] with ParseEmbedded and should require the result's
// Version to equal p.Version.
func (p Packet) EmbeddedOffset() int {
	if !p.IsICMPError() {
		return 0
	}
	return p.HeaderLen + icmpMinLen
}

// Parse reads the IPv4 or IPv6 packet at the start of b. b may extend past
// the packet's total length; Packet.TotalLen says where it ends. It returns
// one of the package's errors, and the zero Packet, for bytes that are not
// a well-formed packet. It never allocates.
func Parse(b []byte) (Packet, error) { return parse(b, false) }

// ParseEmbedded reads the original packet quoted in an ICMP error (see
// Packet.EmbeddedOffset). The quote is usually cut short, so ParseEmbedded
// accepts a total length beyond b and needs only the IP header and the
// first 8 bytes of the transport header: it sets ports and ICMP fields, but
// not TCPFlags or TCPHeaderLen.
func ParseEmbedded(b []byte) (Packet, error) { return parse(b, true) }

func parse(b []byte, embedded bool) (Packet, error) {
	var p Packet
	if len(b) == 0 {
		return Packet{}, ErrShort
	}
	var err error
	switch b[0] >> 4 {
	case 4:
		err = p.parseIPv4(b, embedded)
	case 6:
		err = p.parseIPv6(b, embedded)
	default:
		return Packet{}, ErrVersion
	}
	if err != nil {
		return Packet{}, err
	}
	return p, nil
}

// end returns where the packet's bytes end in b: its total length, cut to
// the buffer for an embedded packet.
func end(b []byte, total int, embedded bool) (int, error) {
	if total <= len(b) {
		return total, nil
	}
	if !embedded {
		return 0, ErrTruncated
	}
	return len(b), nil
}

func (p *Packet) parseIPv4(b []byte, embedded bool) error {
	if len(b) < IPv4HeaderLen {
		return ErrShort
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return ErrIPHeaderLen
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	n, err := end(b, total, embedded)
	if err != nil {
		return err
	}
	if total < ihl {
		return ErrIPHeaderLen
	}
	if n < ihl {
		return ErrTruncated // an embedded header cut inside its options
	}
	frag := binary.BigEndian.Uint16(b[6:8])
	p.FragOff = (frag & 0x1fff) * 8
	p.MoreFragments = frag&0x2000 != 0
	if int(p.FragOff)+total-ihl > 0xffff {
		return ErrFragment
	}
	p.Version, p.Proto = 4, b[9]
	p.FragID = uint32(binary.BigEndian.Uint16(b[4:6]))
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.HeaderLen, p.TotalLen = ihl, total
	if p.FragOff != 0 {
		return nil
	}
	return p.parseTransport(b[ihl:n], embedded)
}

func (p *Packet) parseIPv6(b []byte, embedded bool) error {
	if len(b) < IPv6HeaderLen {
		return ErrShort
	}
	total := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
	n, err := end(b, total, embedded)
	if err != nil {
		return err
	}
	next, off := b[6], IPv6HeaderLen
	fragEnd := 0 // offset past the fragment header, if there is one
walk:
	for i := 0; ; i++ {
		switch next {
		case extHopByHop, extRouting, extDestOpts, extFragment:
		default:
			break walk
		}
		if i == MaxExtHeaders {
			return ErrTooManyExtHeaders
		}
		if off+8 > n { // every extension header is at least 8 bytes
			return ErrExtHeader
		}
		h := b[off:n]
		if next != extFragment {
			l := (int(h[1]) + 1) * 8
			if l > len(h) {
				return ErrExtHeader
			}
			next, off = h[0], off+l
			continue
		}
		if fragEnd != 0 {
			return ErrExtHeader
		}
		frag := binary.BigEndian.Uint16(h[2:4])
		p.FragOff = frag &^ 7
		p.MoreFragments = frag&1 != 0
		p.FragID = binary.BigEndian.Uint32(h[4:8])
		next, off = h[0], off+8
		fragEnd = off
		if p.FragOff != 0 {
			break // the rest is the middle of a datagram: no headers
		}
	}
	if fragEnd != 0 && int(p.FragOff)+total-fragEnd > 0xffff {
		return ErrFragment
	}
	p.Version, p.Proto = 6, next
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.HeaderLen, p.TotalLen = off, total
	if p.FragOff != 0 {
		return nil
	}
	return p.parseTransport(b[off:n], embedded)
}

// parseTransport reads the transport header at the start of l4, which ends
// where the packet (or the quoted part of an embedded one) does.
func (p *Packet) parseTransport(l4 []byte, embedded bool) error {
	need := 0
	switch {
	case embedded && (p.Proto == ProtoTCP || p.Proto == ProtoUDP || p.Proto == ProtoUDPLite || p.Proto == ProtoSCTP):
		need = embeddedL4Len
	case p.Proto == ProtoTCP:
		need = tcpMinLen
	case p.Proto == ProtoUDP || p.Proto == ProtoUDPLite:
		need = udpLen
	case p.Proto == ProtoSCTP:
		need = sctpMinLen
	case p.Proto == ProtoICMP && p.Version == 4, p.Proto == ProtoICMPv6 && p.Version == 6:
		if len(l4) < icmpMinLen {
			return ErrTransportShort
		}
		p.HasICMP, p.ICMPType, p.ICMPCode = true, l4[0], l4[1]
		if p.IsICMPEcho() {
			p.ICMPID = binary.BigEndian.Uint16(l4[4:6])
		}
		return nil
	default:
		return nil // a protocol whose header we do not read
	}
	if len(l4) < need {
		return ErrTransportShort
	}
	p.HasPorts = true
	p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
	p.DstPort = binary.BigEndian.Uint16(l4[2:4])
	if p.Proto != ProtoTCP || embedded {
		return nil
	}
	doff := int(l4[12]>>4) * 4
	if doff < tcpMinLen || doff > len(l4) {
		return ErrTCPHeaderLen
	}
	p.TCPHeaderLen, p.TCPFlags = uint8(doff), l4[13]
	return nil
}
