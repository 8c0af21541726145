package tundev

import (
	"encoding/binary"
	"errors"
	"math/bits"

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

// sumBytes adds b as big-endian 16-bit words to sum (ones' complement
// arithmetic; fold the result with foldChecksum). It sums little-endian
// 32-bit words into four independent accumulators, which has no carry
// chain to wait on, and swaps the bytes of the folded result at the end:
// the ones' complement sum is byte-order independent up to that swap.
func sumBytes(b []byte, sum uint64) uint64 {
	var s0, s1, s2, s3 uint64
	for len(b) >= 32 {
		s0 += uint64(binary.LittleEndian.Uint32(b)) + uint64(binary.LittleEndian.Uint32(b[4:]))
		s1 += uint64(binary.LittleEndian.Uint32(b[8:])) + uint64(binary.LittleEndian.Uint32(b[12:]))
		s2 += uint64(binary.LittleEndian.Uint32(b[16:])) + uint64(binary.LittleEndian.Uint32(b[20:]))
		s3 += uint64(binary.LittleEndian.Uint32(b[24:])) + uint64(binary.LittleEndian.Uint32(b[28:]))
		b = b[32:]
	}
	le := s0 + s1 + s2 + s3 // at most 2^45 for 64 KiB: no overflow
	for len(b) >= 4 {
		le += uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		le += uint64(binary.LittleEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		le += uint64(b[0])
	}
	return sum + uint64(bits.ReverseBytes16(foldChecksum(le)))
}

func foldChecksum(sum uint64) uint16 {
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>16 + sum&0xffff
	sum = sum>>16 + sum&0xffff
	return uint16(sum)
}

// fixIPHeader sets the length field of pkt, whose headers ip describes, to
// len(pkt), and an IPv4 header's checksum. The offloads call it on packets
// they built, which are never longer than 64 KiB.
func fixIPHeader(pkt []byte, ip packet.Packet) {
	_ = packet.SetTotalLen(pkt, len(pkt)) // cannot fail: the header is there and the length fits
	if ip.Version == 4 {
		pkt[packet.IPv4ChecksumOff], pkt[packet.IPv4ChecksumOff+1] = 0, 0
		binary.BigEndian.PutUint16(pkt[packet.IPv4ChecksumOff:], ^foldChecksum(sumBytes(pkt[:ip.HeaderLen], 0)))
	}
}

// pseudoHeaderSum returns the sum of the TCP or UDP pseudo-header of pkt,
// whose headers ip describes: the addresses, the protocol and the
// transport length.
func pseudoHeaderSum(pkt []byte, ip packet.Packet) uint64 {
	return sumBytes(ip.Addrs(pkt), uint64(ip.Proto)+uint64(len(pkt)-ip.HeaderLen))
}
