package packet

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

var (
	src4 = netip.MustParseAddr("10.1.2.3")
	dst4 = netip.MustParseAddr("10.4.5.6")
	src6 = netip.MustParseAddr("fd00::1")
	dst6 = netip.MustParseAddr("fd00::2")
)

// v4 describes an IPv4 packet to build.
type v4 struct {
	opts  []byte // options, a multiple of 4 bytes
	proto byte
	frag  uint16 // the flags and fragment offset word
	id    uint16
	l4    []byte
	ihl   int // overrides the IHL nibble when nonzero
	total int // overrides the total length when nonzero
	pad   int // bytes after the packet
}

func (s v4) bytes() []byte {
	hl := 20 + len(s.opts)
	b := make([]byte, hl+len(s.l4)+s.pad)
	ihl := hl / 4
	if s.ihl != 0 {
		ihl = s.ihl
	}
	b[0] = 0x40 | byte(ihl)
	total := hl + len(s.l4)
	if s.total != 0 {
		total = s.total
	}
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[4:], s.id)
	binary.BigEndian.PutUint16(b[6:], s.frag)
	b[8], b[9] = 64, s.proto
	copy(b[12:], src4.AsSlice())
	copy(b[16:], dst4.AsSlice())
	copy(b[20:], s.opts)
	copy(b[hl:], s.l4)
	return b
}

// ext is an IPv6 extension header: its kind and its length in 8-byte
// units (the fragment header is always 8 bytes; body then sets its word).
type ext struct {
	kind  byte
	units int
	frag  uint16 // fragment header: offset and M flag word
	id    uint32
}

// v6 describes an IPv6 packet to build.
type v6 struct {
	exts    []ext
	proto   byte // the next header after the chain
	l4      []byte
	payload int // overrides the payload length when nonzero
	pad     int
}

func (s v6) bytes() []byte {
	var chain []byte
	for i, e := range s.exts {
		next := s.proto
		if i+1 < len(s.exts) {
			next = s.exts[i+1].kind
		}
		h := make([]byte, e.units*8)
		if e.kind == extFragment {
			h = make([]byte, 8)
			binary.BigEndian.PutUint16(h[2:], e.frag)
			binary.BigEndian.PutUint32(h[4:], e.id)
		} else {
			h[1] = byte(e.units - 1)
		}
		h[0] = next
		chain = append(chain, h...)
	}
	b := make([]byte, 40+len(chain)+len(s.l4)+s.pad)
	b[0] = 0x60
	payload := len(chain) + len(s.l4)
	if s.payload != 0 {
		payload = s.payload
	}
	binary.BigEndian.PutUint16(b[4:], uint16(payload))
	b[6], b[7] = s.proto, 64
	if len(s.exts) > 0 {
		b[6] = s.exts[0].kind
	}
	copy(b[8:], src6.AsSlice())
	copy(b[24:], dst6.AsSlice())
	copy(b[40:], chain)
	copy(b[40+len(chain):], s.l4)
	return b
}

func tcp(sport, dport uint16, flags byte, doff int, payload int) []byte {
	b := make([]byte, max(doff*4, 20)+payload)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12], b[13] = byte(doff)<<4, flags
	return b
}

func udp(sport, dport uint16, payload int) []byte {
	b := make([]byte, 8+payload)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+payload))
	return b
}

func icmp(typ, code byte, id uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	b[0], b[1] = typ, code
	binary.BigEndian.PutUint16(b[4:], id)
	return append(b, payload...)
}

func exts(n int, kind byte) []ext {
	e := make([]ext, n)
	for i := range e {
		e[i] = ext{kind: kind, units: 1}
	}
	return e
}

// want4 and want6 are the Packets a plain header of each family yields.
func want4(proto byte, hl, total int) Packet {
	return Packet{Version: 4, Proto: proto, Src: src4, Dst: dst4, HeaderLen: hl, TotalLen: total}
}

func want6(proto byte, hl, total int) Packet {
	return Packet{Version: 6, Proto: proto, Src: src6, Dst: dst6, HeaderLen: hl, TotalLen: total}
}

// with applies changes to a copy of p, so each table row says what differs.
func with(p Packet, f func(*Packet)) Packet { f(&p); return p }

func ports(sport, dport uint16) func(*Packet) {
	return func(p *Packet) { p.HasPorts, p.SrcPort, p.DstPort = true, sport, dport }
}

func tcpPorts(sport, dport uint16, flags, hl uint8) func(*Packet) {
	return func(p *Packet) {
		ports(sport, dport)(p)
		p.TCPFlags, p.TCPHeaderLen = flags, hl
	}
}

type parseTest struct {
	name string
	pkt  []byte
	want Packet
	err  error
}

func parseTests() []parseTest {
	opts := []byte{1, 1, 1, 0, 0x94, 4, 0, 0} // NOPs, EOL, router alert
	synAck := byte(TCPFlagSYN | TCPFlagACK)
	return []parseTest{
		// IPv4.
		{"v4 udp", v4{proto: ProtoUDP, l4: udp(53, 4000, 10)}.bytes(),
			with(want4(ProtoUDP, 20, 38), ports(53, 4000)), nil},
		{"v4 tcp syn-ack", v4{proto: ProtoTCP, l4: tcp(443, 5000, synAck, 5, 0)}.bytes(),
			with(want4(ProtoTCP, 20, 40), tcpPorts(443, 5000, synAck, 20)), nil},
		{"v4 tcp with options", v4{proto: ProtoTCP, l4: tcp(1, 2, TCPFlagACK|TCPFlagPSH, 8, 100)}.bytes(),
			with(want4(ProtoTCP, 20, 152), tcpPorts(1, 2, TCPFlagACK|TCPFlagPSH, 32)), nil},
		{"v4 options", v4{opts: opts, proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			with(want4(ProtoUDP, 28, 36), ports(1, 2)), nil},
		{"v4 padded", v4{proto: ProtoUDP, l4: udp(1, 2, 3), pad: 13}.bytes(),
			with(want4(ProtoUDP, 20, 31), ports(1, 2)), nil},
		{"v4 sctp", v4{proto: ProtoSCTP, l4: make([]byte, 12)}.bytes(),
			with(want4(ProtoSCTP, 20, 32), ports(0, 0)), nil},
		{"v4 udplite", v4{proto: ProtoUDPLite, l4: udp(7, 8, 0)}.bytes(),
			with(want4(ProtoUDPLite, 20, 28), ports(7, 8)), nil},
		{"v4 gre has no ports", v4{proto: 47, l4: make([]byte, 4)}.bytes(), want4(47, 20, 24), nil},
		{"v4 icmp echo", v4{proto: ProtoICMP, l4: icmp(8, 0, 0x1234, nil)}.bytes(),
			with(want4(ProtoICMP, 20, 28), func(p *Packet) { p.HasICMP, p.ICMPType, p.ICMPID = true, 8, 0x1234 }), nil},
		{"v4 icmp unreachable", v4{proto: ProtoICMP, l4: icmp(3, 13, 0x55, nil)}.bytes(),
			with(want4(ProtoICMP, 20, 28), func(p *Packet) { p.HasICMP, p.ICMPType, p.ICMPCode = true, 3, 13 }), nil},
		{"v4 carrying icmpv6 is opaque", v4{proto: ProtoICMPv6, l4: icmp(128, 0, 1, nil)}.bytes(),
			want4(ProtoICMPv6, 20, 28), nil},
		{"v4 first fragment", v4{proto: ProtoUDP, frag: 0x2000, id: 77, l4: udp(1, 2, 16)}.bytes(),
			with(want4(ProtoUDP, 20, 44), func(p *Packet) {
				ports(1, 2)(p)
				p.MoreFragments, p.FragID = true, 77
			}), nil},
		{"v4 non-first fragment", v4{proto: ProtoTCP, frag: 0x2000 | 3, id: 77, l4: []byte{9, 9, 9}}.bytes(),
			with(want4(ProtoTCP, 20, 23), func(p *Packet) { p.FragOff, p.MoreFragments, p.FragID = 24, true, 77 }), nil},
		{"v4 last fragment with DF bits", v4{proto: ProtoUDP, frag: 0x4000 | 0x8000 | 1, l4: []byte{1}}.bytes(),
			with(want4(ProtoUDP, 20, 21), func(p *Packet) { p.FragOff = 8 }), nil},
		{"v4 fragment at the 65535 limit", v4{proto: ProtoUDP, frag: 8190, l4: make([]byte, 15)}.bytes(),
			with(want4(ProtoUDP, 20, 35), func(p *Packet) { p.FragOff = 65520 }), nil},
		{"v4 fragment past 65535", v4{proto: ProtoUDP, frag: 8190, l4: make([]byte, 16)}.bytes(), Packet{}, ErrFragment},
		{"v4 first fragment too short for ports", v4{proto: ProtoUDP, frag: 0x2000, l4: make([]byte, 4)}.bytes(), Packet{}, ErrTransportShort},
		{"v4 tcp short", v4{proto: ProtoTCP, l4: make([]byte, 19)}.bytes(), Packet{}, ErrTransportShort},
		{"v4 tcp data offset 4", v4{proto: ProtoTCP, l4: tcp(1, 2, 0, 4, 10)}.bytes(), Packet{}, ErrTCPHeaderLen},
		{"v4 tcp data offset past end", v4{proto: ProtoTCP, l4: tcp(1, 2, 0, 15, 0)[:40]}.bytes(), Packet{}, ErrTCPHeaderLen},
		{"v4 tcp data offset past total length", v4{proto: ProtoTCP, l4: tcp(1, 2, 0, 6, 0), total: 40, pad: 0}.bytes(), Packet{}, ErrTCPHeaderLen},
		{"v4 udp short", v4{proto: ProtoUDP, l4: make([]byte, 7)}.bytes(), Packet{}, ErrTransportShort},
		{"v4 sctp short", v4{proto: ProtoSCTP, l4: make([]byte, 11)}.bytes(), Packet{}, ErrTransportShort},
		{"v4 icmp short", v4{proto: ProtoICMP, l4: make([]byte, 7)}.bytes(), Packet{}, ErrTransportShort},
		{"v4 ihl 4", v4{proto: ProtoUDP, l4: udp(1, 2, 0), ihl: 4}.bytes(), Packet{}, ErrIPHeaderLen},
		{"v4 ihl beyond total", v4{proto: ProtoUDP, l4: make([]byte, 40), ihl: 15, total: 40}.bytes(), Packet{}, ErrIPHeaderLen},
		{"v4 total beyond buffer", v4{proto: ProtoUDP, l4: udp(1, 2, 0), total: 29}.bytes(), Packet{}, ErrTruncated},
		{"v4 total shorter than header", v4{proto: ProtoUDP, l4: udp(1, 2, 0), total: 19}.bytes(), Packet{}, ErrIPHeaderLen},
		{"v4 total cuts the udp header", v4{proto: ProtoUDP, l4: udp(1, 2, 0), total: 27}.bytes(), Packet{}, ErrTransportShort},
		{"v4 shorter than a header", v4{}.bytes()[:19], Packet{}, ErrShort},
		{"empty", nil, Packet{}, ErrShort},
		{"version 5", []byte{0x50, 0, 0, 0}, Packet{}, ErrVersion},
		{"version 0", make([]byte, 40), Packet{}, ErrVersion},

		// IPv6.
		{"v6 udp", v6{proto: ProtoUDP, l4: udp(53, 4000, 2)}.bytes(),
			with(want6(ProtoUDP, 40, 50), ports(53, 4000)), nil},
		{"v6 tcp fin", v6{proto: ProtoTCP, l4: tcp(22, 6000, TCPFlagFIN|TCPFlagACK, 5, 0), pad: 16}.bytes(),
			with(want6(ProtoTCP, 40, 60), tcpPorts(22, 6000, TCPFlagFIN|TCPFlagACK, 20)), nil},
		{"v6 no next header", v6{proto: ProtoNoNextV6}.bytes(), want6(ProtoNoNextV6, 40, 40), nil},
		{"v6 hop-by-hop", v6{exts: []ext{{kind: extHopByHop, units: 1}}, proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			with(want6(ProtoUDP, 48, 56), ports(1, 2)), nil},
		{"v6 routing", v6{exts: []ext{{kind: extRouting, units: 3}}, proto: ProtoTCP, l4: tcp(1, 2, TCPFlagSYN, 5, 0)}.bytes(),
			with(want6(ProtoTCP, 64, 84), tcpPorts(1, 2, TCPFlagSYN, 20)), nil},
		{"v6 destination options", v6{exts: []ext{{kind: extDestOpts, units: 2}}, proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			with(want6(ProtoUDP, 56, 64), ports(1, 2)), nil},
		{"v6 chain", v6{exts: []ext{{kind: extHopByHop, units: 1}, {kind: extDestOpts, units: 1}, {kind: extRouting, units: 2},
			{kind: extFragment, frag: 1, id: 0xdeadbeef}, {kind: extDestOpts, units: 1}}, proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			with(want6(ProtoUDP, 88, 96), func(p *Packet) {
				ports(1, 2)(p)
				p.MoreFragments, p.FragID = true, 0xdeadbeef
			}), nil},
		{"v6 chain at the limit", v6{exts: exts(MaxExtHeaders, extDestOpts), proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			with(want6(ProtoUDP, 40+8*MaxExtHeaders, 48+8*MaxExtHeaders), ports(1, 2)), nil},
		{"v6 chain too long", v6{exts: exts(MaxExtHeaders+1, extDestOpts), proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			Packet{}, ErrTooManyExtHeaders},
		{"v6 atomic fragment", v6{exts: []ext{{kind: extFragment, id: 5}}, proto: ProtoICMPv6, l4: icmp(129, 0, 9, nil)}.bytes(),
			with(want6(ProtoICMPv6, 48, 56), func(p *Packet) { p.FragID, p.HasICMP, p.ICMPType, p.ICMPID = 5, true, 129, 9 }), nil},
		{"v6 first fragment", v6{exts: []ext{{kind: extFragment, frag: 1, id: 6}}, proto: ProtoTCP, l4: tcp(80, 81, TCPFlagACK, 5, 1000)}.bytes(),
			with(want6(ProtoTCP, 48, 1068), func(p *Packet) {
				tcpPorts(80, 81, TCPFlagACK, 20)(p)
				p.MoreFragments, p.FragID = true, 6
			}), nil},
		{"v6 non-first fragment stops the walk", v6{exts: []ext{{kind: extHopByHop, units: 1}, {kind: extFragment, frag: 1232, id: 7}},
			proto: extDestOpts, l4: []byte{0xff, 0xff, 1, 2}}.bytes(),
			with(want6(extDestOpts, 56, 60), func(p *Packet) { p.FragOff, p.FragID = 1232, 7 }), nil},
		{"v6 fragment past 65535", v6{exts: []ext{{kind: extFragment, frag: 65528}}, proto: ProtoUDP, l4: make([]byte, 8)}.bytes(),
			Packet{}, ErrFragment},
		{"v6 two fragment headers", v6{exts: []ext{{kind: extFragment}, {kind: extFragment}}, proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes(),
			Packet{}, ErrExtHeader},
		{"v6 first fragment too short for ports", v6{exts: []ext{{kind: extFragment, frag: 1}}, proto: ProtoUDP, l4: make([]byte, 6)}.bytes(),
			Packet{}, ErrTransportShort},
		{"v6 ext header past end", v6{exts: []ext{{kind: extRouting, units: 4}}, proto: ProtoUDP, payload: 24}.bytes(),
			Packet{}, ErrExtHeader},
		{"v6 ext header cut before its length", v6{exts: []ext{{kind: extHopByHop, units: 1}}, proto: ProtoUDP, payload: 4}.bytes(),
			Packet{}, ErrExtHeader},
		{"v6 ext header past payload but in padding", v6{exts: []ext{{kind: extDestOpts, units: 2}}, proto: ProtoUDP, l4: udp(1, 2, 0), payload: 8}.bytes(),
			Packet{}, ErrExtHeader},
		{"v6 payload beyond buffer", v6{proto: ProtoUDP, l4: udp(1, 2, 0), payload: 9}.bytes(), Packet{}, ErrTruncated},
		{"v6 shorter than a header", v6{}.bytes()[:39], Packet{}, ErrShort},
		{"v6 tcp data offset past end", v6{proto: ProtoTCP, l4: tcp(1, 2, 0, 6, 0)[:20]}.bytes(), Packet{}, ErrTCPHeaderLen},
		{"v6 icmpv6 short", v6{proto: ProtoICMPv6, l4: make([]byte, 4)}.bytes(), Packet{}, ErrTransportShort},
		{"v6 carrying icmp is opaque", v6{proto: ProtoICMP, l4: make([]byte, 2)}.bytes(), want6(ProtoICMP, 40, 42), nil},
	}
}

func TestParse(t *testing.T) {
	for _, tt := range parseTests() {
		got, err := Parse(tt.pkt)
		if err != tt.err || got != tt.want {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", tt.name, got, err, tt.want, tt.err)
		}
		// The reference agrees on every row, so the fuzz target's oracle is
		// itself checked against hand-built packets.
		if ref, rerr := refParse(tt.pkt, false); rerr != tt.err || ref != tt.want {
			t.Errorf("%s: reference got %+v, %v\nwant %+v, %v", tt.name, ref, rerr, tt.want, tt.err)
		}
	}
}

// An ICMP error quotes the packet it is about; the firewall matches it to
// that packet's flow through EmbeddedOffset and ParseEmbedded.
func TestEmbedded(t *testing.T) {
	// The quoted TCP packet's total length says 1500, but only its IP header
	// and 8 bytes of TCP are quoted.
	quoted4 := v4{proto: ProtoTCP, l4: tcp(5000, 443, TCPFlagSYN, 5, 0), total: 1500}.bytes()[:28]
	quoted6 := v6{exts: []ext{{kind: extDestOpts, units: 1}}, proto: ProtoUDP, l4: udp(6000, 53, 100)}.bytes()[:56]
	echo6 := v6{proto: ProtoICMPv6, l4: icmp(128, 0, 0x4242, make([]byte, 56))}.bytes()[:48]
	tests := []struct {
		name      string
		outer     []byte
		offset    int
		want      Packet
		err       error
		wantOuter error
	}{
		{"v4 unreachable quoting tcp", v4{proto: ProtoICMP, l4: icmp(3, 4, 0, quoted4)}.bytes(), 28,
			with(want4(ProtoTCP, 20, 1500), ports(5000, 443)), nil, nil},
		{"v4 time exceeded with options", v4{opts: make([]byte, 4), proto: ProtoICMP, l4: icmp(11, 0, 0, quoted4)}.bytes(), 32,
			with(want4(ProtoTCP, 20, 1500), ports(5000, 443)), nil, nil},
		{"v6 packet too big quoting udp", v6{proto: ProtoICMPv6, l4: icmp(2, 0, 0, quoted6)}.bytes(), 48,
			with(want6(ProtoUDP, 48, 156), ports(6000, 53)), nil, nil},
		{"v6 unreachable quoting echo", v6{proto: ProtoICMPv6, l4: icmp(1, 1, 0, echo6)}.bytes(), 48,
			with(want6(ProtoICMPv6, 40, 104), func(p *Packet) { p.HasICMP, p.ICMPType, p.ICMPID = true, 128, 0x4242 }), nil, nil},
		{"v4 quote cut inside the ports", v4{proto: ProtoICMP, l4: icmp(3, 1, 0, quoted4[:24])}.bytes(), 28,
			Packet{}, ErrTransportShort, nil},
		{"v4 quote cut inside the options", v4{proto: ProtoICMP, l4: icmp(12, 0, 0,
			v4{opts: make([]byte, 8), proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes()[:24])}.bytes(), 28,
			Packet{}, ErrTruncated, nil},
		{"v4 echo is not an error", v4{proto: ProtoICMP, l4: icmp(0, 0, 1, quoted4)}.bytes(), 0, Packet{}, nil, nil},
		{"v6 echo is not an error", v6{proto: ProtoICMPv6, l4: icmp(129, 0, 1, quoted4)}.bytes(), 0, Packet{}, nil, nil},
	}
	for _, tt := range tests {
		outer, err := Parse(tt.outer)
		if err != tt.wantOuter {
			t.Errorf("%s: outer got %v, want %v", tt.name, err, tt.wantOuter)
			continue
		}
		off := outer.EmbeddedOffset()
		if off != tt.offset {
			t.Errorf("%s: got offset %d, want %d", tt.name, off, tt.offset)
			continue
		}
		if off == 0 {
			continue
		}
		got, err := ParseEmbedded(tt.outer[off:outer.TotalLen])
		if err != tt.err || got != tt.want {
			t.Errorf("%s:\n got %+v, %v\nwant %+v, %v", tt.name, got, err, tt.want, tt.err)
		}
		if got.Version != 0 && got.Version != outer.Version {
			t.Errorf("%s: got inner version %d, want %d", tt.name, got.Version, outer.Version)
		}
	}
}

func TestMethods(t *testing.T) {
	tests := []struct {
		name                         string
		p                            Packet
		frag, nonFirst, echo, icmErr bool
	}{
		{"zero", Packet{}, false, false, false, false},
		{"first fragment", Packet{Version: 4, MoreFragments: true}, true, false, false, false},
		{"last fragment", Packet{Version: 6, FragOff: 8}, true, true, false, false},
		{"v4 echo request", Packet{Version: 4, HasICMP: true, ICMPType: 8}, false, false, true, false},
		{"v4 echo reply", Packet{Version: 4, HasICMP: true, ICMPType: 0}, false, false, true, false},
		{"v4 parameter problem", Packet{Version: 4, HasICMP: true, ICMPType: 12}, false, false, false, true},
		{"v4 type 128 is no echo", Packet{Version: 4, HasICMP: true, ICMPType: 128}, false, false, false, false},
		{"v6 echo request", Packet{Version: 6, HasICMP: true, ICMPType: 128}, false, false, true, false},
		{"v6 packet too big", Packet{Version: 6, HasICMP: true, ICMPType: 2}, false, false, false, true},
		{"v6 type 0 is neither", Packet{Version: 6, HasICMP: true, ICMPType: 0}, false, false, false, false},
		{"v6 neighbour solicitation", Packet{Version: 6, HasICMP: true, ICMPType: 135}, false, false, false, false},
		{"type without HasICMP", Packet{Version: 4, ICMPType: 3}, false, false, false, false},
	}
	for _, tt := range tests {
		p := tt.p
		if got := p.IsFragment(); got != tt.frag {
			t.Errorf("%s: IsFragment got %v, want %v", tt.name, got, tt.frag)
		}
		if got := p.IsNonFirstFragment(); got != tt.nonFirst {
			t.Errorf("%s: IsNonFirstFragment got %v, want %v", tt.name, got, tt.nonFirst)
		}
		if got := p.IsICMPEcho(); got != tt.echo {
			t.Errorf("%s: IsICMPEcho got %v, want %v", tt.name, got, tt.echo)
		}
		if got := p.IsICMPError(); got != tt.icmErr {
			t.Errorf("%s: IsICMPError got %v, want %v", tt.name, got, tt.icmErr)
		}
	}
}

func TestNoAllocs(t *testing.T) {
	v4pkt := v4{proto: ProtoTCP, l4: tcp(1, 2, TCPFlagACK, 5, 1380)}.bytes()
	v6pkt := v6{exts: []ext{{kind: extHopByHop, units: 1}}, proto: ProtoUDP, l4: udp(1, 2, 1200)}.bytes()
	bad := v4pkt[:30]
	if n := testing.AllocsPerRun(1000, func() {
		Parse(v4pkt)
		Parse(v6pkt)
		Parse(bad)
		ParseEmbedded(bad)
	}); n != 0 {
		t.Errorf("got %v allocs, want 0", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, tt := range parseTests() {
		f.Add(tt.pkt)
	}
	f.Add(v4{proto: ProtoICMP, l4: icmp(3, 4, 0, v4{proto: ProtoTCP, l4: tcp(1, 2, 0, 5, 0)}.bytes()[:28])}.bytes())
	f.Add(v6{proto: ProtoICMPv6, l4: icmp(1, 0, 0, v6{proto: ProtoUDP, l4: udp(1, 2, 0)}.bytes())}.bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, embedded := range []bool{false, true} {
			got, err := parse(b, embedded)
			want, werr := refParse(b, embedded)
			if got != want || err != werr {
				t.Fatalf("embedded=%v: got %+v, %v\nreference %+v, %v", embedded, got, err, want, werr)
			}
			if err == nil && !embedded && (got.TotalLen > len(b) || got.HeaderLen > got.TotalLen) {
				t.Fatalf("accepted lengths outside the buffer: %+v for %d bytes", got, len(b))
			}
		}
		// An ICMP error's quote parses without panicking too.
		if p, err := Parse(b); err == nil {
			if off := p.EmbeddedOffset(); off != 0 {
				ParseEmbedded(b[off:p.TotalLen])
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	for _, bc := range []struct {
		name string
		pkt  []byte
	}{
		{"v4-tcp", v4{proto: ProtoTCP, l4: tcp(1, 2, TCPFlagACK, 8, 1368)}.bytes()},
		{"v6-udp", v6{proto: ProtoUDP, l4: udp(1, 2, 1232)}.bytes()},
		{"v6-ext-chain", v6{exts: []ext{{kind: extHopByHop, units: 1}, {kind: extDestOpts, units: 1}}, proto: ProtoUDP, l4: udp(1, 2, 1200)}.bytes()},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.pkt)))
			for b.Loop() {
				if _, err := Parse(bc.pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
