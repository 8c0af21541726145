package tundev

import "encoding/binary"

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
	protoTCP = 6
	protoUDP = 17

	tcpFlagFIN = 0x01
	tcpFlagPSH = 0x08
	tcpFlagACK = 0x10

	maxIPPacket = 1<<16 - 1
	// groFlows bounds the flows open at once; a batch rarely has more,
	// and a linear scan over a few beats a map.
	groFlows = 8
)

// groPacket is a packet as GRO sees it.
type groPacket struct {
	v6           bool
	proto        byte
	ipLen        int // IP header length
	l4Len        int // TCP or UDP header length
	payload      int // bytes after the transport header
	srcOff, alen int // address offset and length in the IP header
	seq          uint32
	flags        byte // TCP flags
}

// parseGRO reports whether pkt is a TCP or UDP packet that GRO may merge:
// no IP options or extension headers, not a fragment, with a payload, and
// for TCP only ACK and PSH set.
func parseGRO(pkt []byte, udp bool) (groPacket, bool) {
	var p groPacket
	if len(pkt) < 20 {
		return p, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if pkt[0]&0x0f != 5 || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) ||
			binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
			return p, false
		}
		p.ipLen, p.proto, p.srcOff, p.alen = 20, pkt[9], 12, 4
	case 6:
		if len(pkt) < 40 || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return p, false
		}
		p.v6, p.ipLen, p.proto, p.srcOff, p.alen = true, 40, pkt[6], 8, 16
	default:
		return p, false
	}
	l4 := pkt[p.ipLen:]
	switch {
	case p.proto == protoTCP && len(l4) >= 20:
		p.l4Len = int(l4[12]>>4) * 4
		p.flags = l4[13]
		p.seq = binary.BigEndian.Uint32(l4[4:])
		if p.l4Len < 20 || p.l4Len > len(l4) || p.flags&^(tcpFlagACK|tcpFlagPSH) != 0 || p.flags&tcpFlagACK == 0 {
			return p, false
		}
	case p.proto == protoUDP && udp && len(l4) >= 8:
		p.l4Len = 8
	default:
		return p, false
	}
	p.payload = len(l4) - p.l4Len
	return p, p.payload > 0
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
			g.closeFlowOf(pkt)
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

// sameFlow compares addresses and ports of two packets of one family.
func sameFlow(a, b []byte, p groPacket) bool {
	n := p.srcOff + 2*p.alen
	return string(a[p.srcOff:n]) == string(b[p.srcOff:n]) &&
		string(a[p.ipLen:p.ipLen+4]) == string(b[p.ipLen:p.ipLen+4])
}

// flowOf returns the open flow pkt belongs to, or nil.
func (g *groBatch) flowOf(pkt []byte, p groPacket) *groFlow {
	for i := range g.flows[:g.open] {
		f := &g.flows[i]
		if !f.closed && f.p.v6 == p.v6 && f.p.proto == p.proto && sameFlow(g.out[f.out][HeaderRoom:], pkt, p) {
			return f
		}
	}
	return nil
}

// closeFlowOf ends the flow of a packet GRO does not merge (a FIN, say),
// so nothing later in its flow overtakes it.
func (g *groBatch) closeFlowOf(pkt []byte) {
	if len(pkt) < 20 || g.open == 0 {
		return
	}
	for i := range g.flows[:g.open] {
		f := &g.flows[i]
		head := g.out[f.out][HeaderRoom:]
		if f.closed || head[0]>>4 != pkt[0]>>4 || len(pkt) < f.p.ipLen+4 || (f.p.v6 && pkt[6] != f.p.proto) || (!f.p.v6 && pkt[9] != f.p.proto) {
			continue
		}
		if sameFlow(head, pkt, f.p) {
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
	f.closed = p.flags&tcpFlagPSH != 0
}

// merge appends pkt's payload to f's super-packet if the kernel would have
// merged them: the same IP header fields that matter, for TCP the next
// sequence number with the same ack, window and options, and a payload no
// longer than the first (a shorter one ends the flow).
func (g *groBatch) merge(f *groFlow, pkt []byte, p groPacket) bool {
	headBuf := g.out[f.out]
	head := headBuf[HeaderRoom:]
	if p.payload > f.gso || len(head)+p.payload > maxIPPacket || len(headBuf)+p.payload > cap(headBuf) ||
		p.l4Len != f.p.l4Len || !sameIPFields(head, pkt, p.v6) {
		f.closed = true
		return false
	}
	if p.proto == protoTCP {
		h, t := head[p.ipLen:], pkt[p.ipLen:]
		if p.seq != f.nextSeq || string(h[8:12]) != string(t[8:12]) || string(h[14:16]) != string(t[14:16]) ||
			string(h[20:p.l4Len]) != string(t[20:p.l4Len]) {
			f.closed = true
			return false
		}
		f.nextSeq += uint32(p.payload)
		if p.flags&tcpFlagPSH != 0 {
			h[13] |= tcpFlagPSH
			f.closed = true
		}
	}
	g.out[f.out] = append(headBuf, pkt[p.ipLen+p.l4Len:]...)
	f.count++
	if p.payload < f.gso {
		f.closed = true
	}
	return true
}

// sameIPFields compares what must match for packets to be one
// super-packet: IPv4 TOS, TTL and DF; IPv6 traffic class, flow label and
// hop limit.
func sameIPFields(a, b []byte, v6 bool) bool {
	if v6 {
		return string(a[:4]) == string(b[:4]) && a[7] == b[7]
	}
	return a[1] == b[1] && a[8] == b[8] && a[6]&0x40 == b[6]&0x40
}

// finish fixes the lengths and checksums of a super-packet and sets its
// virtio-net header; a flow of one packet goes out unchanged.
func (g *groBatch) finish(f *groFlow) {
	if f.count < 2 {
		return
	}
	pkt := g.out[f.out][HeaderRoom:]
	p := f.p
	l4len := len(pkt) - p.ipLen
	if p.v6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(l4len))
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], ^foldChecksum(sumBytes(pkt[:20], 0)))
	}
	h := virtioHdr{
		flags:     virtioFlagNeedsCsum,
		hdrLen:    uint16(p.ipLen + p.l4Len),
		gsoSize:   uint16(f.gso),
		csumStart: uint16(p.ipLen),
	}
	switch {
	case p.proto == protoUDP:
		h.gsoType, h.csumOffset = virtioGSOUDPL4, 6
		binary.BigEndian.PutUint16(pkt[p.ipLen+4:], uint16(l4len))
	case p.v6:
		h.gsoType, h.csumOffset = virtioGSOTCPv6, 16
	default:
		h.gsoType, h.csumOffset = virtioGSOTCPv4, 16
	}
	// The checksum field holds the pseudo-header sum; the kernel adds the
	// rest when it segments or delivers.
	pseudo := sumBytes(pkt[p.srcOff:p.srcOff+2*p.alen], uint64(p.proto)+uint64(l4len))
	binary.BigEndian.PutUint16(pkt[int(h.csumStart)+int(h.csumOffset):], foldChecksum(pseudo))
	g.hdrs[f.out] = h
}
