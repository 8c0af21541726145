package tundevtest

import "encoding/binary"

// VirtioHdrLen is the length of the virtio-net header in front of every
// frame.
const VirtioHdrLen = 10

// Virtio-net header flags and GSO types.
const (
	FlagNeedsCsum = 1 // the checksum at CsumStart+CsumOffset is partial
	GSONone       = 0
	GSOTCPv4      = 1
	GSOTCPv6      = 4
	GSOUDPL4      = 5
)

// VirtioHdr is struct virtio_net_hdr (legacy layout, host byte order). It
// is written out here rather than taken from tundev, so the fake checks
// the driver's layout against a second reading of the spec.
type VirtioHdr struct {
	Flags, GSOType                         uint8
	HdrLen, GSOSize, CsumStart, CsumOffset uint16
}

func (h VirtioHdr) put(b []byte) {
	b[0], b[1] = h.Flags, h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}

func getVirtioHdr(b []byte) VirtioHdr {
	return VirtioHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// Segments returns how many packets a frame of packet pkt under h carries:
// 1 without GSO, else its payload after HdrLen cut every GSOSize bytes.
func (h VirtioHdr) Segments(pkt []byte) int {
	if h.GSOType == GSONone || h.GSOSize == 0 || len(pkt) <= int(h.HdrLen) {
		return 1
	}
	gso := int(h.GSOSize)
	return (len(pkt) - int(h.HdrLen) + gso - 1) / gso
}
