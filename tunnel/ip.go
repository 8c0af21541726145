package tunnel

import (
	"encoding/binary"
	"net/netip"
)

// Inner IP header layout: just what routing and the source check need.
const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
)

// innerHeader is the parsed view of a tunnelled IP packet.
type innerHeader struct {
	src, dst netip.Addr
	// length is the packet's total length per its header, which may be
	// shorter than the buffer once WireGuard padding is added.
	length int
}

// parseInner reads the IPv4 or IPv6 header at the start of pkt. It reports
// false for anything that is not a well-formed IP header whose stated length
// fits in pkt. It never allocates.
func parseInner(pkt []byte) (h innerHeader, ok bool) {
	if len(pkt) == 0 {
		return h, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen || int(pkt[0]&0x0f)*4 < ipv4HeaderLen {
			return h, false
		}
		h.length = int(binary.BigEndian.Uint16(pkt[2:4]))
		if h.length < int(pkt[0]&0x0f)*4 || h.length > len(pkt) {
			return h, false
		}
		h.src = netip.AddrFrom4([4]byte(pkt[12:16]))
		h.dst = netip.AddrFrom4([4]byte(pkt[16:20]))
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return h, false
		}
		h.length = ipv6HeaderLen + int(binary.BigEndian.Uint16(pkt[4:6]))
		if h.length > len(pkt) {
			return h, false
		}
		h.src = netip.AddrFrom16([16]byte(pkt[8:24]))
		h.dst = netip.AddrFrom16([16]byte(pkt[24:40]))
	default:
		return h, false
	}
	return h, true
}
