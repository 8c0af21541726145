package tundev

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/overlay-node/overlay-node/packet"
	"golang.zx2c4.com/wireguard/tun"
)

// superPacket coalesces in with gro.go and returns the one super-packet
// (behind HeaderRoom) and its header, as the kernel would hand it over.
func superPacket(t *testing.T, udp bool, in []groPkt) ([]byte, virtioHdr) {
	t.Helper()
	var bufs [][]byte
	for _, p := range in {
		bufs = append(bufs, p.build())
	}
	g := groBatch{udp: udp}
	g.coalesce(bufs)
	if len(g.out) != 1 {
		t.Fatalf("test input coalesced into %d packets, want 1", len(g.out))
	}
	return g.out[0], g.hdrs[0]
}

// checkValid verifies the IPv4 header and transport checksums of pkt.
func checkValid(t *testing.T, pkt []byte) {
	t.Helper()
	v6 := pkt[0]>>4 == 6
	ipLen, proto, addrs := 20, pkt[9], pkt[12:20]
	if v6 {
		ipLen, proto, addrs = 40, pkt[6], pkt[8:40]
	} else if packet.Fold(packet.Sum(pkt[:20], 0)) != 0xffff {
		t.Error("bad IPv4 header checksum")
	}
	l4 := pkt[ipLen:]
	if packet.Fold(packet.Sum(l4, packet.Sum(addrs, uint64(proto)+uint64(len(l4))))) != 0xffff {
		t.Error("bad transport checksum")
	}
}

func blankID(s []byte) []byte {
	if s[0]>>4 == 4 {
		s[4], s[5] = 0, 0
	}
	return s
}

func TestSplitGSO(t *testing.T) {
	psh := func(p []groPkt) []groPkt { p[len(p)-1].flags |= packet.TCPFlagPSH; return p }
	udpRun := func(v6 bool, n, payload int) []groPkt {
		var out []groPkt
		for i := range n {
			out = append(out, groPkt{v6: v6, udp: true, sport: 9000, payload: payload, fill: byte(i)})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		udp  bool
		in   []groPkt
	}{
		{"TCP IPv4", false, psh(tcpRun(false, 1, 1<<31, 45, 1448))},
		{"TCP IPv6 with a short tail", false, func() []groPkt { p := tcpRun(true, 1, 77, 10, 1428); p[9].payload = 3; return p }()},
		{"UDP IPv4", true, udpRun(false, 30, 1200)},
		{"UDP IPv6", true, udpRun(true, 30, 99)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			super, h := superPacket(t, tc.udp, tc.in)
			bufs := make([][]byte, len(tc.in)+1)
			for i := range bufs {
				bufs[i] = make([]byte, BufferSize)
			}
			copy(bufs[0], super)
			sizes := make([]int, len(bufs))
			n, err := splitGSO(bufs, sizes, len(super)-HeaderRoom, h)
			if err != nil || n != len(tc.in) {
				t.Fatalf("split into %d packets, %v; want %d", n, err, len(tc.in))
			}
			for k := range n {
				got := bufs[k][HeaderRoom : HeaderRoom+sizes[k]]
				checkValid(t, got)
				want := tc.in[k].build()[HeaderRoom:]
				if normalize(blankID(got)) != normalize(blankID(want)) {
					t.Fatalf("packet %d differs from the one coalesced:\n got %x\nwant %x", k, got[:60], want[:60])
				}
			}
		})
	}
}

func TestSplitGSOFlags(t *testing.T) {
	in := tcpRun(false, 1, 0, 4, 1000)
	super, h := superPacket(t, false, in)
	pkt := super[HeaderRoom:]
	pkt[20+13] |= packet.TCPFlagFIN | packet.TCPFlagPSH | 0x80 // the stack's flags for the whole: FIN, PSH, CWR
	h.gsoType |= virtioGSOECN
	bufs := [][]byte{make([]byte, BufferSize), make([]byte, BufferSize), make([]byte, BufferSize), make([]byte, BufferSize)}
	copy(bufs[0], super)
	sizes := make([]int, 4)
	if n, err := splitGSO(bufs, sizes, len(pkt), h); n != 4 || err != nil {
		t.Fatalf("split: %d, %v", n, err)
	}
	want := []byte{packet.TCPFlagACK | 0x80, packet.TCPFlagACK, packet.TCPFlagACK, packet.TCPFlagACK | packet.TCPFlagFIN | packet.TCPFlagPSH}
	for k := range 4 {
		if got := bufs[k][HeaderRoom+20+13]; got != want[k] {
			t.Errorf("packet %d flags %#02x, want %#02x", k, got, want[k])
		}
		if id := binary.BigEndian.Uint16(bufs[k][HeaderRoom+4:]); id != uint16(k) {
			t.Errorf("packet %d IPv4 ID %d, want %d", k, id, k)
		}
	}
}

func TestSplitGSOErrors(t *testing.T) {
	super, h := superPacket(t, false, tcpRun(false, 1, 0, 10, 1000))
	size := len(super) - HeaderRoom
	split := func(h virtioHdr, size, nbufs int, edit func([]byte)) error {
		bufs := make([][]byte, nbufs)
		for i := range bufs {
			bufs[i] = make([]byte, BufferSize)
		}
		copy(bufs[0], super)
		if edit != nil {
			edit(bufs[0][HeaderRoom:])
		}
		_, err := splitGSO(bufs, make([]int, nbufs), size, h)
		return err
	}
	bad := func(f func(*virtioHdr)) virtioHdr { c := h; f(&c); return c }
	for _, tc := range []struct {
		name string
		h    virtioHdr
		size int
		n    int
		edit func(pkt []byte)
		want error
	}{
		{"fits", h, size, 10, nil, nil},
		{"IP length 0, not yet final", h, size, 10, func(p []byte) { p[2], p[3] = 0, 0 }, nil},
		{"too many segments", h, size, 9, nil, tun.ErrTooManySegments},
		{"gso size 0", bad(func(c *virtioHdr) { c.gsoSize = 0 }), size, 10, nil, errBadVirtioHdr},
		{"no NEEDS_CSUM", bad(func(c *virtioHdr) { c.flags = 0 }), size, 10, nil, errBadVirtioHdr},
		{"csum start not the IPv4 header length", bad(func(c *virtioHdr) { c.csumStart = 24 }), size, 10, nil, errBadVirtioHdr},
		{"unknown gso type", bad(func(c *virtioHdr) { c.gsoType = 3 }), size, 10, nil, errBadVirtioHdr},
		{"UDP GSO of a TCP packet", bad(func(c *virtioHdr) { c.gsoType = virtioGSOUDPL4 }), size, 10, nil, errBadVirtioHdr},
		{"TCP GSO of an ICMP packet", h, size, 10, func(p []byte) { p[9] = packet.ProtoICMP }, errBadVirtioHdr},
		{"a fragment", h, size, 10, func(p []byte) { p[6] |= 0x20 }, errBadVirtioHdr},
		{"not IP", h, size, 10, func(p []byte) { p[0] = 0x55 }, errBadVirtioHdr},
		{"no payload", h, 40, 10, nil, errBadVirtioHdr},
		{"truncated", h, 25, 10, nil, errBadVirtioHdr},
	} {
		if err := split(tc.h, tc.size, tc.n, tc.edit); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCompleteChecksum(t *testing.T) {
	buf := groPkt{sport: 1, flags: packet.TCPFlagACK, payload: 333}.build()
	pkt := buf[HeaderRoom:]
	// As the kernel leaves it: the pseudo-header sum in the field.
	binary.BigEndian.PutUint16(pkt[36:], packet.Fold(packet.Sum(pkt[12:20], packet.ProtoTCP+uint64(len(pkt)-20))))
	if err := completeChecksum(pkt, virtioHdr{flags: virtioFlagNeedsCsum, csumStart: 20, csumOffset: 16}); err != nil {
		t.Fatal(err)
	}
	checkValid(t, pkt)
	if err := completeChecksum(pkt, virtioHdr{csumStart: 20, csumOffset: uint16(len(pkt))}); err == nil {
		t.Error("a checksum offset past the packet was accepted")
	}
}
