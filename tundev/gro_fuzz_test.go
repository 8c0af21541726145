package tundev

import (
	"encoding/binary"
	"testing"
)

// FuzzGRO feeds arbitrary packets (as an authenticated peer could send
// them) through the coalescer: it must never panic, never grow a packet
// past its buffer or 64 KiB, and every super-packet it makes must carry
// a header that describes it.
func FuzzGRO(f *testing.F) {
	for _, p := range tcpRun(false, 1, 0, 3, 100) {
		f.Add(p.build()[HeaderRoom:], uint8(3), true)
	}
	f.Add(groPkt{v6: true, udp: true, sport: 1, payload: 50}.build()[HeaderRoom:], uint8(4), true)
	f.Fuzz(func(t *testing.T, pkt []byte, copies uint8, udp bool) {
		var bufs [][]byte
		for i := range int(copies%20) + 1 {
			b := make([]byte, HeaderRoom+len(pkt), BufferSize)
			copy(b[HeaderRoom:], pkt)
			if len(pkt) >= 28 && i > 0 { // vary what a flow keys on
				binary.BigEndian.PutUint32(b[HeaderRoom+24:], binary.BigEndian.Uint32(pkt[24:])+uint32(i*len(pkt)))
			}
			bufs = append(bufs, b)
		}
		g := groBatch{udp: udp}
		g.coalesce(bufs)
		for i, b := range g.out {
			h, p := g.hdrs[i], b[HeaderRoom:]
			if len(p) > maxIPPacket || len(b) > BufferSize {
				t.Fatalf("packet of %d bytes", len(p))
			}
			if h.gsoType != virtioGSONone && (int(h.hdrLen) >= len(p) || h.gsoSize == 0) {
				t.Fatalf("header %+v for a %d-byte packet", h, len(p))
			}
		}
	})
}

// FuzzSplitGSO feeds arbitrary frames and virtio-net headers to the
// splitter: it must never panic, and what it returns must fit the batch.
func FuzzSplitGSO(f *testing.F) {
	super, h := func() ([]byte, virtioHdr) {
		var bufs [][]byte
		for _, p := range tcpRun(false, 1, 0, 4, 100) {
			bufs = append(bufs, p.build())
		}
		g := groBatch{}
		g.coalesce(bufs)
		return g.out[0][HeaderRoom:], g.hdrs[0]
	}()
	f.Add(super, h.flags, h.gsoType, h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset)
	f.Fuzz(func(t *testing.T, pkt []byte, flags, gsoType uint8, hdrLen, gsoSize, csumStart, csumOffset uint16) {
		if len(pkt) > BufferSize-HeaderRoom {
			return
		}
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, BufferSize)
		}
		copy(bufs[0][HeaderRoom:], pkt)
		sizes := make([]int, len(bufs))
		h := virtioHdr{flags, gsoType, hdrLen, gsoSize, csumStart, csumOffset}
		n, err := splitGSO(bufs, sizes, len(pkt), h)
		if err == nil && (n < 1 || n > len(bufs)) {
			t.Fatalf("%d packets", n)
		}
		_ = completeChecksum(bufs[0][HeaderRoom:HeaderRoom+len(pkt)], h)
	})
}
