package tundev

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"testing"

	"github.com/overlay-node/overlay-node/packet"
)

// groPkt describes a test packet; build lays it out in a buffer with
// HeaderRoom in front and BufferSize capacity, as the receive path does.
type groPkt struct {
	v6       bool
	udp      bool
	sport    uint16 // flow selector
	seq, ack uint32
	flags    byte
	payload  int
	fill     byte
	ttl      byte
	opts     []byte // TCP options, a multiple of 4 bytes
	ipOpts   []byte // IPv4 options, a multiple of 4 bytes
}

func (t groPkt) build() []byte {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	ipLen := 20 + len(t.ipOpts)
	if t.v6 {
		src, dst, ipLen = netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), 40
	}
	l4Len := 20 + len(t.opts)
	proto := byte(packet.ProtoTCP)
	if t.udp {
		l4Len, proto = 8, packet.ProtoUDP
	}
	ttl := t.ttl
	if ttl == 0 {
		ttl = 64
	}
	n := ipLen + l4Len + t.payload
	buf := make([]byte, HeaderRoom+n, BufferSize)
	pkt := buf[HeaderRoom:]
	if t.v6 {
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(n-40))
		pkt[6], pkt[7] = proto, ttl
		s, d := src.As16(), dst.As16()
		copy(pkt[8:], s[:])
		copy(pkt[24:], d[:])
	} else {
		pkt[0] = 0x40 | byte(ipLen/4)
		binary.BigEndian.PutUint16(pkt[2:], uint16(n))
		pkt[6] = 0x40 // DF
		pkt[8], pkt[9] = ttl, proto
		s, d := src.As4(), dst.As4()
		copy(pkt[12:], s[:])
		copy(pkt[16:], d[:])
		copy(pkt[20:], t.ipOpts)
		binary.BigEndian.PutUint16(pkt[10:], ^packet.Fold(packet.Sum(pkt[:ipLen], 0)))
	}
	l4 := pkt[ipLen:]
	binary.BigEndian.PutUint16(l4[0:], t.sport)
	binary.BigEndian.PutUint16(l4[2:], 5201)
	if t.udp {
		binary.BigEndian.PutUint16(l4[4:], uint16(l4Len+t.payload))
	} else {
		binary.BigEndian.PutUint32(l4[4:], t.seq)
		binary.BigEndian.PutUint32(l4[8:], t.ack)
		l4[12] = byte(l4Len/4) << 4
		l4[13] = t.flags
		binary.BigEndian.PutUint16(l4[14:], 512)
		copy(l4[20:], t.opts)
	}
	for i := range t.payload {
		l4[l4Len+i] = t.fill + byte(i)
	}
	return buf
}

// segment splits a super-packet the way the kernel segments a GSO packet,
// so a test can compare what the TUN would deliver with what went in.
func segment(t *testing.T, pkt []byte, h virtioHdr) [][]byte {
	t.Helper()
	if h.gsoType == virtioGSONone {
		return [][]byte{pkt}
	}
	hdrLen, gso := int(h.hdrLen), int(h.gsoSize)
	if h.flags != virtioFlagNeedsCsum || int(h.csumStart) >= hdrLen || gso == 0 {
		t.Fatalf("bad virtio header %+v", h)
	}
	v6 := pkt[0]>>4 == 6
	ipLen := int(h.csumStart)
	// The checksum field must hold the pseudo-header sum.
	addrOff, alen := 12, 4
	if v6 {
		addrOff, alen = 8, 16
	}
	proto := pkt[9]
	if v6 {
		proto = pkt[6]
	}
	want := packet.Fold(packet.Sum(pkt[addrOff:addrOff+2*alen], uint64(proto)+uint64(len(pkt)-ipLen)))
	if got := binary.BigEndian.Uint16(pkt[ipLen+int(h.csumOffset):]); got != want {
		t.Errorf("checksum field %#04x, want the pseudo-header sum %#04x", got, want)
	}
	if !v6 {
		if packet.Fold(packet.Sum(pkt[:20], 0)) != 0xffff {
			t.Error("IPv4 header checksum of the super-packet is wrong")
		}
		if int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			t.Error("IPv4 total length does not cover the super-packet")
		}
	} else if int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
		t.Error("IPv6 payload length does not cover the super-packet")
	}
	var out [][]byte
	payload := pkt[hdrLen:]
	for off := 0; off < len(payload); off += gso {
		end := min(off+gso, len(payload))
		seg := append(bytes.Clone(pkt[:hdrLen]), payload[off:end]...)
		if h.gsoType == virtioGSOUDPL4 {
			binary.BigEndian.PutUint16(seg[ipLen+4:], uint16(len(seg)-ipLen))
		} else {
			binary.BigEndian.PutUint32(seg[ipLen+4:], binary.BigEndian.Uint32(pkt[ipLen+4:])+uint32(off))
			if end < len(payload) {
				seg[ipLen+13] &^= packet.TCPFlagPSH | packet.TCPFlagFIN
			}
		}
		out = append(out, seg)
	}
	return out
}

// normalize blanks the fields GRO and segmentation rewrite (lengths and
// checksums), leaving what a receiver must see unchanged.
func normalize(pkt []byte) string {
	p := bytes.Clone(pkt)
	if p[0]>>4 == 6 {
		p[4], p[5] = 0, 0
		if p[6] == packet.ProtoUDP {
			p[44], p[45], p[46], p[47] = 0, 0, 0, 0
		} else {
			p[56], p[57] = 0, 0
		}
	} else {
		p[2], p[3], p[10], p[11] = 0, 0, 0, 0
		if p[9] == packet.ProtoUDP {
			p[24], p[25], p[26], p[27] = 0, 0, 0, 0
		} else {
			p[36], p[37] = 0, 0
		}
	}
	return fmt.Sprintf("%x", p)
}

// runGRO coalesces pkts and checks that segmenting the output gives back
// exactly the input, in order within each flow. It returns the output's
// segment counts.
func runGRO(t *testing.T, udp bool, in []groPkt) []int {
	t.Helper()
	var bufs [][]byte
	var want []string
	for _, p := range in {
		b := p.build()
		bufs = append(bufs, b)
		want = append(want, normalize(b[HeaderRoom:]))
	}
	g := groBatch{udp: udp}
	g.coalesce(bufs)
	var got []string
	var counts []int
	for i, b := range g.out {
		segs := segment(t, b[HeaderRoom:], g.hdrs[i])
		counts = append(counts, len(segs))
		for _, s := range segs {
			got = append(got, normalize(s))
		}
	}
	// Order matters only within a flow; the tests keep flows apart by
	// source port, so compare each flow's sequence.
	byFlow := func(pkts []string) map[string][]string {
		m := map[string][]string{}
		for _, p := range pkts {
			key := p[:8] // version nibble and friends
			b, _ := hex.DecodeString(p)
			if b[0]>>4 == 6 {
				key += fmt.Sprint(b[6], b[40:42])
			} else {
				l4 := int(b[0]&0x0f) * 4 // past any options
				key = fmt.Sprint(b[0]>>4, b[9], b[l4:l4+4])
			}
			m[key] = append(m[key], p)
		}
		return m
	}
	w, gg := byFlow(want), byFlow(got)
	if len(w) != len(gg) {
		t.Fatalf("%d flows in, %d out", len(w), len(gg))
	}
	for k, seq := range w {
		if fmt.Sprint(seq) != fmt.Sprint(gg[k]) {
			t.Fatalf("flow %s: segmenting the output does not give back the input\n got %d packets\nwant %d packets", k, len(gg[k]), len(seq))
		}
	}
	return counts
}

// tcpRun returns n segments of one flow, each payload bytes, starting at seq.
func tcpRun(v6 bool, sport uint16, seq uint32, n, payload int) []groPkt {
	var out []groPkt
	for i := range n {
		out = append(out, groPkt{v6: v6, sport: sport, seq: seq + uint32(i*payload), ack: 7, flags: packet.TCPFlagACK,
			payload: payload, fill: byte(i), opts: []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}})
	}
	return out
}

func TestGRO(t *testing.T) {
	cat := func(runs ...[]groPkt) []groPkt {
		var out []groPkt
		for _, r := range runs {
			out = append(out, r...)
		}
		return out
	}
	withFlags := func(p []groPkt, i int, f byte) []groPkt { p[i].flags |= f; return p }
	withPayload := func(p []groPkt, i int, n int) []groPkt { p[i].payload = n; return p }
	udpRun := func(v6 bool, n, payload int) []groPkt {
		var out []groPkt
		for i := range n {
			out = append(out, groPkt{v6: v6, udp: true, sport: 9000, payload: payload, fill: byte(i)})
		}
		return out
	}
	tests := []struct {
		name string
		udp  bool
		in   []groPkt
		want []int // segments per written packet
	}{
		{"one IPv4 flow", false, tcpRun(false, 1, 1000, 10, 1348), []int{10}},
		{"one IPv6 flow", false, tcpRun(true, 1, 1000, 10, 1328), []int{10}},
		{"shorter last ends the super-packet", false, cat(withPayload(tcpRun(false, 1, 0, 3, 1000), 2, 500), tcpRun(false, 1, 2500, 2, 1000)), []int{3, 2}},
		{"sequence gap", false, cat(tcpRun(false, 1, 0, 3, 1000), tcpRun(false, 1, 5000, 3, 1000)), []int{3, 3}},
		{"two interleaved flows", false, func() []groPkt {
			a, b := tcpRun(false, 1, 0, 4, 1000), tcpRun(false, 2, 0, 4, 1000)
			var out []groPkt
			for i := range a {
				out = append(out, a[i], b[i])
			}
			return out
		}(), []int{4, 4}},
		{"FIN is written alone and ends the flow", false, cat(tcpRun(false, 1, 0, 2, 1000), withFlags(tcpRun(false, 1, 2000, 1, 1000), 0, packet.TCPFlagFIN), tcpRun(false, 1, 3000, 2, 1000)), []int{2, 1, 2}},
		{"PSH joins and ends the flow", false, cat(withFlags(tcpRun(false, 1, 0, 2, 1000), 1, packet.TCPFlagPSH), tcpRun(false, 1, 2000, 2, 1000)), []int{2, 2}},
		{"different ack", false, func() []groPkt { p := tcpRun(false, 1, 0, 3, 1000); p[2].ack = 8; return p }(), []int{2, 1}},
		{"different TTL", false, func() []groPkt { p := tcpRun(false, 1, 0, 3, 1000); p[1].ttl, p[2].ttl = 3, 3; return p }(), []int{1, 2}},
		{"different options", false, func() []groPkt {
			p := tcpRun(false, 1, 0, 3, 1000)
			p[1].opts = []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 2}
			p[2].opts = p[1].opts
			return p
		}(), []int{1, 2}},
		{"64 KiB limit", false, tcpRun(false, 1, 0, 70, 1000), []int{65, 5}},
		{"pure ACKs pass alone", false, []groPkt{{sport: 1, flags: packet.TCPFlagACK}, {sport: 1, flags: packet.TCPFlagACK}}, []int{1, 1}},
		{"UDP with UDP GSO", true, udpRun(false, 20, 200), []int{20}},
		{"UDP IPv6 with UDP GSO", true, udpRun(true, 20, 200), []int{20}},
		{"UDP without UDP GSO", false, udpRun(false, 3, 200), []int{1, 1, 1}},
		{"a packet with IP options ends its flow", true, cat(udpRun(false, 2, 200), func() []groPkt {
			p := udpRun(false, 1, 200)
			p[0].ipOpts = []byte{1, 1, 1, 0} // NOPs and end of options
			return p
		}(), udpRun(false, 2, 200)), []int{2, 1, 2}},
		{"more flows than slots", false, func() []groPkt {
			var out []groPkt
			for round := range 3 {
				for f := range groFlows + 3 {
					out = append(out, tcpRun(false, uint16(f+1), uint32(round*1000), 1, 1000)...)
				}
			}
			return out
		}(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := runGRO(t, tc.udp, tc.in)
			if tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("segments per written packet %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGRONoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	in := append(tcpRun(false, 1, 0, 40, 1348), tcpRun(true, 2, 0, 40, 1328)...)
	in = append(in, groPkt{udp: true, sport: 3, payload: 100})
	orig := make([][]byte, len(in))
	bufs := make([][]byte, len(in))
	for i, p := range in {
		orig[i] = p.build()
		bufs[i] = make([]byte, BufferSize)
	}
	g := groBatch{udp: true}
	counts := 0
	allocs := testing.AllocsPerRun(100, func() {
		for i := range orig { // coalescing rewrites the heads
			bufs[i] = bufs[i][:copy(bufs[i][:cap(bufs[i])], orig[i])]
		}
		g.coalesce(bufs)
		counts = len(g.out)
	})
	if allocs != 0 {
		t.Errorf("coalescing a batch allocated %.1f times, want 0", allocs)
	}
	if counts != 3 {
		t.Errorf("wrote %d packets, want 3 (two super-packets and the UDP one)", counts)
	}
}

func TestSumBytes(t *testing.T) {
	// Odd lengths, long runs of 0xff (carries), against a 16-bit reference.
	for _, n := range []int{0, 1, 2, 7, 8, 9, 63, 64, 1500, 65535} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0xff - i%3)
		}
		var ref uint64 = 0xfffe
		for i := 0; i+1 < n; i += 2 {
			ref += uint64(binary.BigEndian.Uint16(b[i:]))
		}
		if n%2 == 1 {
			ref += uint64(b[n-1]) << 8
		}
		if got, want := packet.Fold(packet.Sum(b, 0xfffe)), packet.Fold(ref); got != want {
			t.Errorf("%d bytes: %#04x, want %#04x", n, got, want)
		}
	}
}
