package conntrack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/packet"
)

// model is a reference for Table: plain maps, no bounds, no shards, no
// canonical keys; a packet's flow is found by trying its tuple in its
// direction, then the reverse tuple in the other.
type model struct {
	flows    map[modelFlow]*modelEntry
	frags    map[modelFrag]int64 // deadline
	admitter Admitter
	gen      int
	cut      int
}

type tuple struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	echo         bool // an ICMP echo: id in place of ports
	request      bool // the echo is a request
	id           uint16
}

func (t tuple) reverse() tuple {
	return tuple{t.dst, t.src, t.proto, t.dport, t.sport, t.echo, t.echo && !t.request, t.id}
}

type modelFlow struct {
	t   tuple
	dir Direction
}

type modelEntry struct {
	first    packet.Packet // for re-checks
	deadline int64
	timeout  int64
	gen      int
	closing  bool
}

type modelFrag struct {
	src, dst netip.Addr
	proto    uint8
	id       uint32
	dir      Direction
}

func newModel(a Admitter) *model {
	return &model{flows: map[modelFlow]*modelEntry{}, frags: map[modelFrag]int64{}, admitter: a}
}

func tupleOf(p *packet.Packet) tuple {
	t := tuple{src: p.Src, dst: p.Dst, proto: p.Proto}
	switch {
	case p.HasPorts:
		t.sport, t.dport = p.SrcPort, p.DstPort
	case p.IsICMPEcho():
		t.echo, t.id = true, p.ICMPID
		t.request = p.ICMPType == 8 || p.ICMPType == 128
	}
	return t
}

// find returns the live flow of t seen in dir, and whether t is in the
// flow's first orientation; it forgets a dead one.
func (m *model) find(t tuple, dir Direction, now int64) (*modelEntry, modelFlow, bool) {
	for _, f := range []modelFlow{{t, dir}, {t.reverse(), dir ^ 1}} {
		e, ok := m.flows[f]
		if !ok {
			continue
		}
		if e.deadline <= now {
			delete(m.flows, f)
			return nil, f, false
		}
		return e, f, f.t == t && f.dir == dir
	}
	return nil, modelFlow{}, false
}

// recheck reports whether flow f may stay under the current admitter.
func (m *model) recheck(e *modelEntry, f modelFlow) bool {
	if e.gen == m.gen {
		return true
	}
	if _, ok := m.admitter.Admit(e.first, f.dir); ok {
		e.gen = m.gen
		return true
	}
	delete(m.flows, f)
	m.cut++
	return false
}

func (m *model) check(p *packet.Packet, b []byte, dir Direction, now int64) Verdict {
	v := m.verdict(p, b, dir, now)
	if v.Pass() && p.MoreFragments && p.FragOff == 0 && !p.IsICMPError() {
		m.frags[modelFrag{p.Src, p.Dst, p.Proto, p.FragID, dir}] = now + int64(FragmentTimeout)
	}
	return v
}

func (m *model) verdict(p *packet.Packet, b []byte, dir Direction, now int64) Verdict {
	if p.FragOff != 0 {
		if d, ok := m.frags[modelFrag{p.Src, p.Dst, p.Proto, p.FragID, dir}]; ok && d > now {
			return PassFragment
		}
		return DenyFragment
	}
	if p.IsICMPError() {
		off := p.EmbeddedOffset()
		q, err := packet.ParseEmbedded(b[off:p.TotalLen])
		if err != nil || q.Version != p.Version || q.Src != p.Dst || q.FragOff != 0 || q.IsICMPError() {
			return DenyICMPQuote
		}
		e, f, _ := m.find(tupleOf(&q), dir^1, now)
		switch {
		case e == nil:
			return DenyNoFlow
		case !m.recheck(e, f):
			return DenyCut
		}
		return PassRelated
	}

	t := tupleOf(p)
	tcp := p.Proto == packet.ProtoTCP
	syn := tcp && p.TCPFlags&(packet.TCPFlagSYN|packet.TCPFlagACK|packet.TCPFlagFIN|packet.TCPFlagRST) == packet.TCPFlagSYN
	if e, f, first := m.find(t, dir, now); e != nil {
		if e.closing && syn && first {
			delete(m.flows, f)
		} else {
			if !m.recheck(e, f) {
				return DenyCut
			}
			if tcp && p.TCPFlags&(packet.TCPFlagFIN|packet.TCPFlagRST) != 0 {
				e.closing = true
			}
			e.deadline = now + e.timeout
			if e.closing {
				e.deadline = now + int64(ClosingLinger)
			}
			return PassEstablished
		}
	}
	switch {
	case tcp && !syn:
		return DenyTCPNotSYN
	case t.echo && !t.request:
		return DenyNoFlow
	}
	if _, ok := m.admitter.Admit(*p, dir); !ok {
		return DenyPolicy
	}
	timeout := int64(OtherTimeout)
	switch p.Proto {
	case packet.ProtoTCP:
		timeout = int64(TCPTimeout)
	case packet.ProtoUDP:
		timeout = int64(UDPTimeout)
	}
	m.flows[modelFlow{t, dir}] = &modelEntry{first: *p, deadline: now + timeout, timeout: timeout, gen: m.gen}
	return PassNew
}

// saltAdmitter admits by a hash of what a policy reads, salted per reload.
type saltAdmitter byte

func (s saltAdmitter) Admit(p packet.Packet, dir Direction) (int, bool) {
	src, dst := p.Src.As16(), p.Dst.As16()
	h := uint32(s)*2654435761 ^ uint32(p.Version)<<24 ^ uint32(p.Proto)<<16 ^ uint32(dir)<<8 ^
		uint32(src[15])<<4 ^ uint32(dst[15]) ^ uint32(p.SrcPort)<<3 ^ uint32(p.DstPort)<<11 ^ uint32(p.ICMPID)<<7
	h *= 2654435761
	return int(h >> 28), h>>29%4 != 0
}

// Fuzz vocabulary: few addresses and ports so flows meet again.
var (
	fuzzAddrs = [2][3]netip.Addr{{a4, b4, r4}, {a6, b6, r6}}
	fuzzPorts = [4]uint16{53, 80, 40000, 40001}
	fuzzFlags = [8]uint8{syn, synAck, ack, finAck, rst, packet.TCPFlagPSH | ack, syn | rst, 0}
	fuzzTicks = [8]time.Duration{0, time.Second, ClosingLinger, FragmentTimeout, UDPTimeout - time.Second, UDPTimeout, OtherTimeout, TCPTimeout}
)

// fuzzPacket builds a packet from four fuzz bytes, or reports that op is not a packet.
func fuzzPacket(op, x, y, z byte) (pk, bool) {
	addrs := &fuzzAddrs[x>>7]
	src, dst := addrs[x%3], addrs[x/3%3]
	sport, dport := fuzzPorts[y%4], fuzzPorts[y/4%4]
	var p pk
	switch op % 12 {
	case 0, 1:
		p = tcp(src, dst, sport, dport, fuzzFlags[z%8])
	case 2:
		p = udp(src, dst, sport, dport)
	case 3:
		p = echo(src, dst, uint16(z%3), true)
	case 4:
		p = echo(src, dst, uint16(z%3), false)
	case 5: // an ICMP error about a packet from dst (or src, to test the check) to the router
		quoted, _ := fuzzPacket(z%5, x, y, z/5)
		if quoted.proto == icmpProto(src) && quoted.icmpType != 8 && quoted.icmpType != 128 && quoted.icmpType != 0 && quoted.icmpType != 129 {
			quoted = udp(quoted.src, quoted.dst, sport, dport)
		}
		to := quoted.src
		if z&0x80 != 0 {
			to = quoted.dst
		}
		p = unreachable(addrs[2], to, quoted)
		if z&0x40 != 0 {
			p.quote = p.quote[:len(p.quote)-len(p.quote)/2] // cut inside the header, sometimes
		}
	case 6:
		p = udp(src, dst, sport, dport).frag(0, true, uint32(z%4))
	case 7:
		p = udp(src, dst, sport, dport).frag(uint16(z%4+1)*8, z&0x80 != 0, uint32(z/4%4))
	case 8:
		p = pk{src: src, dst: dst, proto: 47}
	case 9:
		p = pk{src: src, dst: dst, proto: icmpProto(src), icmpType: 13} // neither echo nor error
		if src.Is6() {
			p.icmpType = 130
		}
	default:
		return pk{}, false
	}
	return p, true
}

// FuzzConntrackStateMachine drives a Table and the model with the same
// packets, clock steps and reloads. The Table must never panic nor hold
// more than its maximum, and must agree with the model until it evicts.
func FuzzConntrackStateMachine(f *testing.F) {
	f.Add([]byte{16, 0, 1, 5, 0, 2, 1, 6, 0, 10, 0, 0, 0, 0, 1, 1, 2})
	f.Add([]byte{200, 2, 1, 5, 0, 5, 3, 5, 1, 10, 3, 0, 0, 11, 9, 0, 0, 2, 3, 5, 0})
	f.Add([]byte{3, 6, 1, 5, 1, 7, 1, 5, 1, 3, 1, 0, 0, 4, 3, 0, 0, 10, 1, 0, 0, 5, 3, 0, 0})
	f.Add([]byte{0, 0, 1, 2, 0, 0, 3, 8, 2, 11, 7, 0, 0, 0, 3, 8, 3, 10, 4, 0, 0})
	// SYN, FIN, the linger, a reply.
	f.Add([]byte{16, 0, 3, 0, 0, 0, 3, 0, 3, 10, 2, 0, 0, 12, 1, 0, 2})
	f.Fuzz(stateMachine)
}

func stateMachine(t *testing.T, data []byte) {
	{
		if len(data) == 0 {
			return
		}
		limit := 1 + int(data[0])*4
		adm := saltAdmitter(0)
		tb := newSeeded(limit, adm, uint64(data[0]))
		m := newModel(adm)
		var now int64 = 1
		data = data[1:]
		for i := 0; len(data) >= 4; i, data = i+1, data[4:] {
			op, x, y, z := data[0], data[1], data[2], data[3]
			switch op % 12 {
			case 10:
				now += int64(fuzzTicks[x%8]) + int64(y)*int64(time.Millisecond)
				continue
			case 11:
				a := saltAdmitter(x)
				tb.SetAdmitter(a)
				m.admitter, m.gen = a, m.gen+1
				continue
			}
			s, _ := fuzzPacket(op, x, y, z)
			p, b := s.parsed(t)
			dir := Direction(op / 12 % 2)
			got, _ := tb.Check(&p, b, dir, now)
			want := m.check(&p, b, dir, now)
			st := tb.Stats()
			if st.Entries > limit || st.Fragments > MaxFragments {
				t.Fatalf("op %d: %d entries, %d fragments: beyond %d, %d", i, st.Entries, st.Fragments, limit, MaxFragments)
			}
			if st.Evictions > 0 || st.FragmentEvictions > 0 {
				return // the model has no bound: from here they may differ
			}
			if got != want {
				t.Fatalf("op %d, %v %+v: got %v, want %v (model)", i, dir, s, got, want)
			}
			if st.Cut != uint64(m.cut) {
				t.Fatalf("op %d: cut %d, model %d", i, st.Cut, m.cut)
			}
		}
	}
}
