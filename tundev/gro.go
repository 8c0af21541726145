package tundev

import (
	"encoding/binary"

	"github.com/overlay-node/overlay-node/packet"
)

// Receive-side GRO: the opened packets of a batch are coalesced per flow
// into TCP and UDP super-packets that the TUN device takes with a
// virtio-net header, so the kernel's stack runs once per super-packet
// rather than once per packet.
//
// The inner checksums of coalesced packets are not verified: the kernel is
// told they are partial (VIRTIO_NET_HDR_F_NEEDS_CSUM), as kernel WireGuard
// marks every decrypted packet CHECKSUM_UNNECESSARY. Poly1305 already
// proved the packet is the one the peer sealed, so a checksum pass would
// only re-check what authentication covers; it was half the cost of the
// coalescing in wireguard-go's tun package, which does verify.

const (
	maxIPPacket = packet.MaxIPv4Len
	// groFlows bounds the flows open at once; a batch rarely has more,
	// and a linear scan over a few beats a map.
	groFlows = 8
)

// groPacket is a packet as GRO sees it: its headers as packet.Parse read
// them, and what GRO adds.
type groPacket struct {
	packet.Packet
	l4Len   int // TCP or UDP header length
	payload int // bytes after the transport header
	seq     uint32
}

// parseGRO reports whether pkt is a TCP or UDP packet that GRO may merge:
// no IP options or extension headers, not a fragment, no padding, with a
// payload, and for TCP only ACK and PSH set. The Packet it returns is set
// whenever pkt parses, merged or not.
func parseGRO(pkt []byte, udp bool) (groPacket, bool) {
	ip, err := packet.Parse(pkt)
	p := groPacket{Packet: ip}
	if err != nil || ip.TotalLen != len(pkt) || ip.IsFragment() || ip.HeaderLen != fixedHeaderLen(ip.Version) {
		return p, false
	}
	switch {
	case ip.Proto == packet.ProtoTCP:
		if ip.TCPFlags&^(packet.TCPFlagACK|packet.TCPFlagPSH) != 0 || ip.TCPFlags&packet.TCPFlagACK == 0 {
			return p, false
		}
		p.l4Len = int(ip.TCPHeaderLen)
		p.seq = binary.BigEndian.Uint32(pkt[ip.HeaderLen+packet.TCPSeqOff:])
	case ip.Proto == packet.ProtoUDP && udp:
		p.l4Len = packet.UDPHeaderLen
	default:
		return p, false
	}
	p.payload = len(pkt) - ip.HeaderLen - p.l4Len
	return p, p.payload > 0
}

// fixedHeaderLen is the IP header length without options or extension
// headers.
func fixedHeaderLen(version uint8) int {
	if version == 6 {
		return packet.IPv6HeaderLen
	}
	return packet.IPv4HeaderLen
}

// groFlow is a super-packet being built in the buffer of its first packet.
type groFlow struct {
	out     int // index in groBatch.out
	p       groPacket
	gso     int    // payload size of each segment but the last
	nextSeq uint32 // TCP: the sequence number that may follow
	count   int
	closed  bool
}

// groBatch coalesces one TUN write batch. It is per-goroutine scratch.
type groBatch struct {
	udp   bool // the TUN device takes UDP GSO (Linux 6.2 and later)
	flows [groFlows]groFlow
	open  int
	out   [][]byte // packets to write, each with HeaderRoom in front
	hdrs  []virtioHdr
}

// coalesce merges pkts (each with HeaderRoom in front, in buffers that own
// their capacity) into g.out, keeping the order of every flow.
func (g *groBatch) coalesce(pkts [][]byte) {
	g.out, g.hdrs, g.open = g.out[:0], g.hdrs[:0], 0
	for _, buf := range pkts {
		pkt := buf[HeaderRoom:]
		p, ok := parseGRO(pkt, g.udp)
		if !ok {
			g.closeFlowOf(p.Packet)
			g.emit(buf)
			continue
		}
		if f := g.flowOf(pkt, p); f != nil && g.merge(f, pkt, p) {
			continue
		}
		g.start(buf, p)
	}
	for i := range g.flows[:g.open] {
		g.finish(&g.flows[i])
	}
}

func (g *groBatch) emit(buf []byte) {
	g.out = append(g.out, buf)
	g.hdrs = append(g.hdrs, virtioHdr{})
}

// sameFlow reports whether b is of a's flow: the same protocol, addresses
// and ports. A b without ports (a non-first fragment) may be of any flow
// between its addresses.
func sameFlow(a, b packet.Packet) bool {
	return a.Proto == b.Proto && a.Src == b.Src && a.Dst == b.Dst &&
		(!b.HasPorts || a.SrcPort == b.SrcPort && a.DstPort == b.DstPort)
}

// flowOf returns the open flow pkt belongs to, or nil.
func (g *groBatch) flowOf(pkt []byte, p groPacket) *groFlow {
	for i := range g.flows[:g.open] {
		f := &g.flows[i]
		if !f.closed && sameFlow(f.p.Packet, p.Packet) {
			return f
		}
	}
	return nil
}

// closeFlowOf ends the flow of a packet GRO does not merge (a FIN, say),
// so nothing later in its flow overtakes it. A packet that does not parse
// (ip is the zero Packet) is of no flow.
func (g *groBatch) closeFlowOf(ip packet.Packet) {
	if ip.Version == 0 {
		return
	}
	for i := range g.flows[:g.open] {
		if f := &g.flows[i]; sameFlow(f.p.Packet, ip) {
			f.closed = true
		}
	}
}

func (g *groBatch) start(buf []byte, p groPacket) {
	if g.open == len(g.flows) {
		g.finish(&g.flows[0])
		copy(g.flows[:], g.flows[1:])
		g.open--
	}
	g.emit(buf)
	f := &g.flows[g.open]
	g.open++
	*f = groFlow{out: len(g.out) - 1, p: p, gso: p.payload, nextSeq: p.seq + uint32(p.payload), count: 1}
	f.closed = p.TCPFlags&packet.TCPFlagPSH != 0
}

// merge appends pkt's payload to f's super-packet if the kernel would have
// merged them: the same IP header fields that matter, for TCP the next
// sequence number with the same ack, window and options, and a payload no
// longer than the first (a shorter one ends the flow).
func (g *groBatch) merge(f *groFlow, pkt []byte, p groPacket) bool {
	headBuf := g.out[f.out]
	head := headBuf[HeaderRoom:]
	if p.payload > f.gso || len(head)+p.payload > maxIPPacket || len(headBuf)+p.payload > cap(headBuf) ||
		p.l4Len != f.p.l4Len || !sameIPFields(head, pkt, p.Version) {
		f.closed = true
		return false
	}
	if p.Proto == packet.ProtoTCP {
		h, t := head[p.HeaderLen:], pkt[p.HeaderLen:]
		if p.seq != f.nextSeq || !sameTCPFields(h, t, p.l4Len) {
			f.closed = true
			return false
		}
		f.nextSeq += uint32(p.payload)
		if p.TCPFlags&packet.TCPFlagPSH != 0 {
			h[packet.TCPFlagsOff] |= packet.TCPFlagPSH
			f.closed = true
		}
	}
	g.out[f.out] = append(headBuf, pkt[p.HeaderLen+p.l4Len:]...)
	f.count++
	if p.payload < f.gso {
		f.closed = true
	}
	return true
}

// sameIPFields compares what must match for packets to be one
// super-packet: IPv4 TOS, TTL and DF; IPv6 traffic class, flow label and
// hop limit.
func sameIPFields(a, b []byte, version uint8) bool {
	if version == 6 {
		return string(a[:packet.IPv6FlowEnd]) == string(b[:packet.IPv6FlowEnd]) &&
			a[packet.IPv6HopLimitOff] == b[packet.IPv6HopLimitOff]
	}
	return a[packet.IPv4TOSOff] == b[packet.IPv4TOSOff] && a[packet.IPv4TTLOff] == b[packet.IPv4TTLOff] &&
		a[packet.IPv4FlagsOff]&packet.IPv4FlagDF == b[packet.IPv4FlagsOff]&packet.IPv4FlagDF
}

// sameTCPFields compares the TCP headers (l4Len bytes) of two segments
// of a flow on what must match besides the sequence number: the ack,
// the window and the options.
func sameTCPFields(a, b []byte, l4Len int) bool {
	return binary.BigEndian.Uint32(a[packet.TCPAckOff:]) == binary.BigEndian.Uint32(b[packet.TCPAckOff:]) &&
		binary.BigEndian.Uint16(a[packet.TCPWindowOff:]) == binary.BigEndian.Uint16(b[packet.TCPWindowOff:]) &&
		string(a[packet.TCPMinHeaderLen:l4Len]) == string(b[packet.TCPMinHeaderLen:l4Len])
}

// finish fixes the lengths and checksums of a super-packet and sets its
// virtio-net header; a flow of one packet goes out unchanged.
func (g *groBatch) finish(f *groFlow) {
	if f.count < 2 {
		return
	}
	pkt := g.out[f.out][HeaderRoom:]
	p := f.p
	fixIPHeader(pkt, p.Packet)
	h := virtioHdr{
		flags:     virtioFlagNeedsCsum,
		hdrLen:    uint16(p.HeaderLen + p.l4Len),
		gsoSize:   uint16(f.gso),
		csumStart: uint16(p.HeaderLen),
	}
	switch {
	case p.Proto == packet.ProtoUDP:
		h.gsoType, h.csumOffset = virtioGSOUDPL4, packet.UDPChecksumOff
		binary.BigEndian.PutUint16(pkt[p.HeaderLen+packet.UDPLenOff:], uint16(len(pkt)-p.HeaderLen))
	case p.Version == 6:
		h.gsoType, h.csumOffset = virtioGSOTCPv6, packet.TCPChecksumOff
	default:
		h.gsoType, h.csumOffset = virtioGSOTCPv4, packet.TCPChecksumOff
	}
	// The checksum field holds the pseudo-header sum; the kernel adds the
	// rest when it segments or delivers.
	binary.BigEndian.PutUint16(pkt[int(h.csumStart)+int(h.csumOffset):], packet.Fold(pseudoHeaderSum(pkt, p.Packet)))
	g.hdrs[f.out] = h
}
