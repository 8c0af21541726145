package tundev

import (
	"encoding/binary"
	"errors"

	"github.com/overlay-node/overlay-node/packet"
)

// The virtio-net header that frames every packet read from or written to
// a TUN device with offloads on (legacy layout, host byte order), and the
// Internet checksum arithmetic that splitting (gso.go) and coalescing
// (gro.go) share.

const (
	virtioHdrLen        = 10
	virtioFlagNeedsCsum = 1
	virtioGSONone       = 0
	virtioGSOTCPv4      = 1
	virtioGSOTCPv6      = 4
	virtioGSOUDPL4      = 5
	virtioGSOECN        = 0x80 // gsoType flag: the flow uses ECN, CWR goes on the first segment only
)

var errBadVirtioHdr = errors.New("tun: inconsistent virtio-net header")

// virtioHdr is struct virtio_net_hdr: how a packet's checksum and
// segmentation are to be completed.
type virtioHdr struct {
	flags, gsoType                         uint8
	hdrLen, gsoSize, csumStart, csumOffset uint16
}

// getVirtioHdr reads the virtioHdrLen bytes of b, in host order.
func getVirtioHdr(b []byte) virtioHdr {
	return virtioHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// putVirtioHdr writes h into the virtioHdrLen bytes of b, in host order.
func putVirtioHdr(b []byte, h virtioHdr) {
	b[0], b[1] = h.flags, h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}

// fixIPHeader sets the length field of pkt, whose headers ip describes, to
// len(pkt), and an IPv4 header's checksum. The offloads call it on packets
// they built, which are never longer than 64 KiB.
func fixIPHeader(pkt []byte, ip packet.Packet) {
	_ = packet.SetTotalLen(pkt, len(pkt)) // cannot fail: the header is there and the length fits
	if ip.Version == 4 {
		pkt[packet.IPv4ChecksumOff], pkt[packet.IPv4ChecksumOff+1] = 0, 0
		binary.BigEndian.PutUint16(pkt[packet.IPv4ChecksumOff:], ^packet.Fold(packet.Sum(pkt[:ip.HeaderLen], 0)))
	}
}

// pseudoHeaderSum returns the sum of the TCP or UDP pseudo-header of pkt,
// whose headers ip describes: the addresses, the protocol and the
// transport length.
func pseudoHeaderSum(pkt []byte, ip packet.Packet) uint64 {
	return packet.Sum(ip.Addrs(pkt), uint64(ip.Proto)+uint64(len(pkt)-ip.HeaderLen))
}
