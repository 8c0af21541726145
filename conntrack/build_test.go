package conntrack

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/overlay-node/overlay-node/packet"
)

// Addresses: this host (a), a peer (b) and a router between them (r).
var (
	a4 = netip.MustParseAddr("10.0.0.1")
	b4 = netip.MustParseAddr("10.0.0.2")
	r4 = netip.MustParseAddr("10.9.9.9")
	a6 = netip.MustParseAddr("fd00::1")
	b6 = netip.MustParseAddr("fd00::2")
	r6 = netip.MustParseAddr("fd00::99")
)

// pk describes a packet to build: IPv4 or IPv6 by its addresses.
type pk struct {
	src, dst           netip.Addr
	proto              uint8
	sport, dport       uint16
	flags              uint8 // TCP flags
	icmpType, icmpCode uint8
	id                 uint16 // echo identifier
	quote              []byte // an ICMP error's quoted packet
	fragOff            uint16 // bytes, a multiple of 8
	mf                 bool
	fragID             uint32
}

func tcp(src, dst netip.Addr, sport, dport uint16, flags uint8) pk {
	return pk{src: src, dst: dst, proto: packet.ProtoTCP, sport: sport, dport: dport, flags: flags}
}

func udp(src, dst netip.Addr, sport, dport uint16) pk {
	return pk{src: src, dst: dst, proto: packet.ProtoUDP, sport: sport, dport: dport}
}

func icmpProto(a netip.Addr) uint8 {
	if a.Is4() {
		return packet.ProtoICMP
	}
	return packet.ProtoICMPv6
}

func echo(src, dst netip.Addr, id uint16, request bool) pk {
	typ := map[bool]map[bool]uint8{true: {true: 8, false: 0}, false: {true: 128, false: 129}}[src.Is4()][request]
	return pk{src: src, dst: dst, proto: icmpProto(src), icmpType: typ, id: id}
}

// unreachable is an ICMP port unreachable (or ICMPv6 destination
// unreachable) from src to dst quoting q.
func unreachable(src, dst netip.Addr, q pk) pk {
	typ, code := uint8(3), uint8(3)
	if src.Is6() {
		typ, code = 1, 4
	}
	return pk{src: src, dst: dst, proto: icmpProto(src), icmpType: typ, icmpCode: code, quote: q.bytes()}
}

func (s pk) frag(off uint16, mf bool, id uint32) pk {
	s.fragOff, s.mf, s.fragID = off, mf, id
	return s
}

func (s pk) bytes() []byte {
	var l4 []byte
	switch {
	case s.fragOff != 0:
		l4 = make([]byte, 16)
	case s.proto == packet.ProtoTCP:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
		l4[12], l4[13] = 5<<4, s.flags
	case s.proto == packet.ProtoUDP:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], s.sport)
		binary.BigEndian.PutUint16(l4[2:], s.dport)
	case s.proto == packet.ProtoICMP, s.proto == packet.ProtoICMPv6:
		l4 = make([]byte, 8, 8+len(s.quote))
		l4[0], l4[1] = s.icmpType, s.icmpCode
		binary.BigEndian.PutUint16(l4[4:], s.id)
		l4 = append(l4, s.quote...)
	default:
		l4 = make([]byte, 8)
	}
	if s.src.Is4() {
		b := make([]byte, 20+len(l4))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		binary.BigEndian.PutUint16(b[4:], uint16(s.fragID))
		word := s.fragOff / 8
		if s.mf {
			word |= 0x2000
		}
		binary.BigEndian.PutUint16(b[6:], word)
		b[8], b[9] = 64, s.proto
		copy(b[12:], s.src.AsSlice())
		copy(b[16:], s.dst.AsSlice())
		copy(b[20:], l4)
		return b
	}
	hl := 40
	if s.fragOff != 0 || s.mf {
		hl += 8
	}
	b := make([]byte, hl+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-40))
	b[6], b[7] = s.proto, 64
	copy(b[8:], s.src.AsSlice())
	copy(b[24:], s.dst.AsSlice())
	if hl > 40 {
		b[6] = 44
		b[40] = s.proto
		word := s.fragOff
		if s.mf {
			word |= 1
		}
		binary.BigEndian.PutUint16(b[42:], word)
		binary.BigEndian.PutUint32(b[44:], s.fragID)
	}
	copy(b[hl:], l4)
	return b
}

// parsed builds and parses s.
func (s pk) parsed(tb testing.TB) (packet.Packet, []byte) {
	tb.Helper()
	b := s.bytes()
	p, err := packet.Parse(b)
	if err != nil {
		tb.Fatalf("building %+v: %v", s, err)
	}
	return p, b
}

// admitFunc is an Admitter that does not allocate.
type admitFunc func(p packet.Packet, dir Direction) (int, bool)

func (f admitFunc) Admit(p packet.Packet, dir Direction) (int, bool) { return f(p, dir) }

// fakeAdmitter admits by a function and records its calls.
type fakeAdmitter struct {
	admit admitFunc
	calls atomic.Int64
	last  atomic.Pointer[admitCall]
}

type admitCall struct {
	p   packet.Packet
	dir Direction
}

func (f *fakeAdmitter) Admit(p packet.Packet, dir Direction) (int, bool) {
	f.calls.Add(1)
	f.last.Store(&admitCall{p, dir})
	return f.admit(p, dir)
}

func allowAll() *fakeAdmitter {
	return &fakeAdmitter{admit: func(packet.Packet, Direction) (int, bool) { return 0, true }}
}

// outboundOnly admits any flow this host opens (rule 1) and none from the
// overlay (reporting rule -1).
func outboundOnly() *fakeAdmitter {
	return &fakeAdmitter{admit: func(_ packet.Packet, dir Direction) (int, bool) {
		if dir == Out {
			return 1, true
		}
		return -1, false
	}}
}

// notPort admits every flow but those to port.
func notPort(port uint16) *fakeAdmitter {
	return &fakeAdmitter{admit: func(p packet.Packet, _ Direction) (int, bool) { return 2, p.DstPort != port }}
}
