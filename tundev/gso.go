package tundev

import (
	"encoding/binary"

	"github.com/overlay-node/overlay-node/packet"
	"golang.zx2c4.com/wireguard/tun"
)

// Send-side GSO: a super-packet the kernel hands the TUN device with a
// virtio-net header (TSO, or UDP GSO from an application) is cut into
// packets of at most gsoSize payload, each with its own headers and
// checksums, as a NIC would. Each packet is then sealed on its own:
// WireGuard carries IP packets, not super-packets.

// completeChecksum finishes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM
// without GSO): the field holds the pseudo-header sum, and the sum over
// the rest goes on top.
func completeChecksum(pkt []byte, h virtioHdr) error {
	start, at := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if at+2 > len(pkt) {
		return errBadVirtioHdr
	}
	binary.BigEndian.PutUint16(pkt[at:], ^packet.Fold(packet.Sum(pkt[start:], 0)))
	return nil
}

// gsoSegments parses the super-packet pkt and returns how many packets it
// splits into, its headers and its transport header length. The packet is
// what the device read: its IP length field may not say so (a kernel may
// leave it 0 on a super-packet), so gsoSegments writes it before parsing.
// The headers must agree with h.
func gsoSegments(pkt []byte, h virtioHdr) (n int, ip packet.Packet, l4Len int, err error) {
	if h.gsoSize == 0 || h.flags&virtioFlagNeedsCsum == 0 || packet.SetTotalLen(pkt, len(pkt)) != nil {
		return 0, ip, 0, errBadVirtioHdr
	}
	ip, err = packet.Parse(pkt)
	if err != nil || ip.IsFragment() || int(h.csumStart) != ip.HeaderLen {
		return 0, ip, 0, errBadVirtioHdr
	}
	switch h.gsoType &^ virtioGSOECN {
	case virtioGSOTCPv4, virtioGSOTCPv6:
		if ip.Proto != packet.ProtoTCP {
			return 0, ip, 0, errBadVirtioHdr
		}
		l4Len = int(ip.TCPHeaderLen)
	case virtioGSOUDPL4:
		if ip.Proto != packet.ProtoUDP {
			return 0, ip, 0, errBadVirtioHdr
		}
		l4Len = packet.UDPHeaderLen
	default:
		return 0, ip, 0, errBadVirtioHdr
	}
	payload := len(pkt) - ip.HeaderLen - l4Len
	if payload <= 0 {
		return 0, ip, 0, errBadVirtioHdr
	}
	gso := int(h.gsoSize)
	return (payload + gso - 1) / gso, ip, l4Len, nil
}

// splitGSO cuts the super-packet in bufs[0][HeaderRoom:HeaderRoom+size]
// into bufs[0:n] (each packet behind HeaderRoom; the first stays where it
// is) and sets sizes[0:n].
func splitGSO(bufs [][]byte, sizes []int, size int, h virtioHdr) (int, error) {
	in := bufs[0][HeaderRoom : HeaderRoom+size]
	n, ip, l4Len, err := gsoSegments(in, h)
	if err != nil {
		return 0, err
	}
	if n > len(bufs) {
		return 0, tun.ErrTooManySegments // a tiny gso size on a 64 KiB packet
	}
	hdrLen, gso := ip.HeaderLen+l4Len, int(h.gsoSize)
	ecn := h.gsoType&virtioGSOECN != 0
	// Backwards, so the first packet, which is the super-packet's own
	// head, is rewritten only after every other has copied from it.
	for k := n - 1; k >= 0; k-- {
		start := hdrLen + k*gso
		end := min(start+gso, len(in))
		pkt := bufs[k][HeaderRoom : HeaderRoom+hdrLen+end-start]
		if k > 0 {
			copy(pkt, in[:hdrLen])
			copy(pkt[hdrLen:], in[start:end])
		}
		fixSegment(pkt, in, ip, k, n, gso, ecn)
		sizes[k] = len(pkt)
	}
	return n, nil
}

// fixSegment sets the lengths, IDs, sequence number, flags and checksums of
// packet k of n cut from in (whose headers, which ip describes, it
// carries) every gso bytes. With ecn, CWR stays on the first packet only.
func fixSegment(pkt, in []byte, ip packet.Packet, k, n, gso int, ecn bool) {
	if ip.Version == 4 {
		id := binary.BigEndian.Uint16(in[packet.IPv4IDOff:]) + uint16(k)
		binary.BigEndian.PutUint16(pkt[packet.IPv4IDOff:], id)
	}
	fixIPHeader(pkt, ip)
	l4 := pkt[ip.HeaderLen:]
	csumAt := packet.UDPChecksumOff
	if ip.Proto == packet.ProtoUDP {
		binary.BigEndian.PutUint16(l4[packet.UDPLenOff:], uint16(len(l4)))
	} else {
		csumAt = packet.TCPChecksumOff
		seq := binary.BigEndian.Uint32(in[ip.HeaderLen+packet.TCPSeqOff:]) + uint32(k*gso)
		binary.BigEndian.PutUint32(l4[packet.TCPSeqOff:], seq)
		if k < n-1 {
			l4[packet.TCPFlagsOff] &^= packet.TCPFlagFIN | packet.TCPFlagPSH
		}
		if k > 0 && ecn {
			l4[packet.TCPFlagsOff] &^= packet.TCPFlagCWR
		}
	}
	l4[csumAt], l4[csumAt+1] = 0, 0
	csum := ^packet.Fold(packet.Sum(l4, pseudoHeaderSum(pkt, ip)))
	if csum == 0 && ip.Proto == packet.ProtoUDP {
		csum = 0xffff // 0 would mean "no checksum"
	}
	binary.BigEndian.PutUint16(l4[csumAt:], csum)
}
