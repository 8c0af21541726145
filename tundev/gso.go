package tundev

import (
	"encoding/binary"

	"golang.zx2c4.com/wireguard/tun"
)

// Send-side GSO: a super-packet the kernel hands the TUN device with a
// virtio-net header (TSO, or UDP GSO from an application) is cut into
// packets of at most gsoSize payload, each with its own headers and
// checksums, as a NIC would. Each packet is then sealed on its own:
// WireGuard carries IP packets, not super-packets.

// The IP header lengths a super-packet's transport header must follow.
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
)

// completeChecksum finishes a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM
// without GSO): the field holds the pseudo-header sum, and the sum over
// the rest goes on top.
func completeChecksum(pkt []byte, h virtioHdr) error {
	start, at := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if at+2 > len(pkt) {
		return errBadVirtioHdr
	}
	binary.BigEndian.PutUint16(pkt[at:], ^foldChecksum(sumBytes(pkt[start:], 0)))
	return nil
}

// gsoSegments returns how many packets the super-packet pkt splits into,
// and its transport header offset and length.
func gsoSegments(pkt []byte, h virtioHdr) (n, l4Off, l4Len int, err error) {
	l4Off = int(h.csumStart)
	v6 := len(pkt) > 0 && pkt[0]>>4 == 6
	switch {
	case h.gsoSize == 0 || h.flags&virtioFlagNeedsCsum == 0 || l4Off < ipv4HeaderLen || len(pkt) < l4Off+8:
		return 0, 0, 0, errBadVirtioHdr
	case !v6 && (pkt[0]>>4 != 4 || int(pkt[0]&0x0f)*4 != l4Off):
		return 0, 0, 0, errBadVirtioHdr
	case v6 && l4Off < ipv6HeaderLen:
		return 0, 0, 0, errBadVirtioHdr
	}
	switch h.gsoType &^ virtioGSOECN {
	case virtioGSOTCPv4, virtioGSOTCPv6:
		if len(pkt) < l4Off+20 {
			return 0, 0, 0, errBadVirtioHdr
		}
		l4Len = int(pkt[l4Off+12]>>4) * 4
		if l4Len < 20 {
			return 0, 0, 0, errBadVirtioHdr
		}
	case virtioGSOUDPL4:
		l4Len = 8
	default:
		return 0, 0, 0, errBadVirtioHdr
	}
	payload := len(pkt) - l4Off - l4Len
	if payload <= 0 {
		return 0, 0, 0, errBadVirtioHdr
	}
	gso := int(h.gsoSize)
	return (payload + gso - 1) / gso, l4Off, l4Len, nil
}

// splitGSO cuts the super-packet in bufs[0][HeaderRoom:HeaderRoom+size]
// into bufs[0:n] (each packet behind HeaderRoom; the first stays where it
// is) and sets sizes[0:n].
func splitGSO(bufs [][]byte, sizes []int, size int, h virtioHdr) (int, error) {
	in := bufs[0][HeaderRoom : HeaderRoom+size]
	n, l4Off, l4Len, err := gsoSegments(in, h)
	if err != nil {
		return 0, err
	}
	if n > len(bufs) {
		return 0, tun.ErrTooManySegments // a tiny gso size on a 64 KiB packet
	}
	hdrLen, gso := l4Off+l4Len, int(h.gsoSize)
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
		fixSegment(pkt, in, k, n, l4Off, gso, h.gsoType)
		sizes[k] = len(pkt)
	}
	return n, nil
}

// fixSegment sets the lengths, IDs, sequence number, flags and checksums of
// packet k of n cut from in (whose header it carries) every gso bytes.
func fixSegment(pkt, in []byte, k, n, l4Off, gso int, gsoType uint8) {
	v6, udp := pkt[0]>>4 == 6, gsoType&^virtioGSOECN == virtioGSOUDPL4
	l4 := pkt[l4Off:]
	proto, addrs := pkt[9], pkt[12:20]
	if v6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-ipv6HeaderLen))
		proto, addrs = protoTCP, pkt[8:40]
		if udp {
			proto = protoUDP
		}
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(pkt[4:], binary.BigEndian.Uint16(in[4:])+uint16(k))
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], ^foldChecksum(sumBytes(pkt[:l4Off], 0)))
	}
	csumAt := 6
	if udp {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	} else {
		csumAt = 16
		binary.BigEndian.PutUint32(l4[4:], binary.BigEndian.Uint32(in[l4Off+4:])+uint32(k*gso))
		if k < n-1 {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
		if k > 0 && gsoType&virtioGSOECN != 0 {
			l4[13] &^= 0x80 // CWR
		}
	}
	l4[csumAt], l4[csumAt+1] = 0, 0
	csum := ^foldChecksum(sumBytes(l4, sumBytes(addrs, uint64(proto)+uint64(len(l4)))))
	if csum == 0 && proto == protoUDP {
		csum = 0xffff // 0 would mean "no checksum"
	}
	binary.BigEndian.PutUint16(l4[csumAt:], csum)
}
