package conntrack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/overlay-node/overlay-node/packet"
)

// echoBit marks an ICMP echo identifier in a key's port field. A request
// from A to B is keyed (A, B, id|echoBit, 0) and its reply from B to A
// (B, A, 0, id|echoBit), the reversed tuple: so a reply matches only as the
// reply of a request, never as the first packet of a flow of its own.
const echoBit = 1 << 16

// key identifies a flow: its tuple and the direction it was seen in. In
// the flow table a key is stored canonical (see flowKey); in the fragment
// table srcPort holds the fragment ID. Addresses are held as big-endian
// halves of their 16 bytes (IPv4 as IPv4-mapped IPv6, told apart by v6),
// so that ordering, hashing and comparing them is a few word operations.
type key struct {
	srcHi, srcLo     uint64
	dstHi, dstLo     uint64
	srcPort, dstPort uint32 // ports, an echo identifier with echoBit, or 0
	proto            uint8
	v6               bool
	dir              Direction
}

// halves returns the big-endian halves of a's 16 bytes.
func halves(a netip.Addr) (hi, lo uint64) {
	if a.Is4() { // the common case, cheaper through As4
		b := a.As4()
		return 0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func addrOf(hi, lo uint64, v6 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	a := netip.AddrFrom16(b)
	if !v6 {
		return a.Unmap()
	}
	return a
}

// setFlow sets k to the canonical key of the flow that p, seen in
// direction dir, belongs to, and reports whether canonical means reversed.
// A tuple and its reverse in the other direction are one flow; the
// canonical key is the orientation whose source sorts first, so one lookup
// finds the flow from either end.
func (k *key) setFlow(p *packet.Packet, dir Direction) (flipped bool) {
	*k = key{proto: p.Proto, v6: p.Version == 6, dir: dir}
	k.srcHi, k.srcLo = halves(p.Src)
	k.dstHi, k.dstLo = halves(p.Dst)
	switch {
	case p.HasPorts:
		k.srcPort, k.dstPort = uint32(p.SrcPort), uint32(p.DstPort)
	case p.IsICMPEcho() && isEchoRequest(p):
		k.srcPort = echoBit | uint32(p.ICMPID)
	case p.IsICMPEcho():
		k.dstPort = echoBit | uint32(p.ICMPID)
	}
	if k.ordered() {
		return false
	}
	k.reverse()
	return true
}

// ordered reports whether k is the canonical one of its flow's two
// orientations. A tuple that is its own reverse is one flow with its Out twin.
func (k *key) ordered() bool {
	switch {
	case k.srcHi != k.dstHi:
		return k.srcHi < k.dstHi
	case k.srcLo != k.dstLo:
		return k.srcLo < k.dstLo
	case k.srcPort != k.dstPort:
		return k.srcPort < k.dstPort
	}
	return k.dir == Out
}

// fragmentKey returns the key under which the datagram of fragment p,
// seen in direction dir, is remembered.
func fragmentKey(p *packet.Packet, dir Direction) key {
	k := key{proto: p.Proto, v6: p.Version == 6, dir: dir, srcPort: p.FragID}
	k.srcHi, k.srcLo = halves(p.Src)
	k.dstHi, k.dstLo = halves(p.Dst)
	return k
}

// reverse turns k into the key of the reply: the tuple reversed, the other direction.
func (k *key) reverse() {
	k.srcHi, k.dstHi = k.dstHi, k.srcHi
	k.srcLo, k.dstLo = k.dstLo, k.srcLo
	k.srcPort, k.dstPort = k.dstPort, k.srcPort
	k.dir ^= 1
}

// packet rebuilds the headers that matter to an Admitter of the first
// packet of the flow k (not canonicalised).
func (k *key) packet() packet.Packet {
	p := packet.Packet{Version: 4, Proto: k.proto, Src: addrOf(k.srcHi, k.srcLo, k.v6), Dst: addrOf(k.dstHi, k.dstLo, k.v6)}
	if k.v6 {
		p.Version = 6
	}
	switch {
	case k.srcPort&echoBit != 0:
		p.HasICMP, p.ICMPType, p.ICMPID = true, 8, uint16(k.srcPort)
		if k.v6 {
			p.ICMPType = 128
		}
	case k.proto == packet.ProtoTCP, k.proto == packet.ProtoUDP, k.proto == packet.ProtoUDPLite, k.proto == packet.ProtoSCTP:
		p.HasPorts, p.SrcPort, p.DstPort = true, uint16(k.srcPort), uint16(k.dstPort)
		if k.proto == packet.ProtoTCP {
			p.TCPFlags = packet.TCPFlagSYN
		}
	}
	return p
}

// seed keys the hash of a Table, so that those who choose tuples cannot
// aim them at one shard or one probe chain.
type seed [6]uint64

// newSeed expands s into a seed with splitmix64.
func newSeed(s uint64) seed {
	var sd seed
	for i := range sd {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		sd[i] = z ^ z>>31
	}
	return sd
}

// hash mixes k with three independent 64×64→128-bit multiplications (as
// wyhash does), a few nanoseconds.
func (sd *seed) hash(k *key) uint64 {
	misc := uint64(k.proto) | uint64(k.dir)<<8
	if k.v6 {
		misc |= 1 << 16
	}
	return mum(k.srcHi^sd[0], k.srcLo^sd[1]) ^
		mum(k.dstHi^sd[2], k.dstLo^sd[3]) ^
		mum(uint64(k.srcPort)|uint64(k.dstPort)<<32^sd[4], misc^sd[5])
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
