package conntrack

import (
	"bytes"
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
// table srcPort holds the fragment ID.
type key struct {
	src, dst         [16]byte // IPv4 as IPv4-mapped IPv6, told apart by v6
	srcPort, dstPort uint32   // ports, an echo identifier with echoBit, or 0
	proto            uint8
	v6               bool
	dir              Direction
}

// flowKey returns the canonical key of the flow that p, seen in direction
// dir, belongs to, and whether canonical means reversed. A tuple and its
// reverse in the other direction are one flow; the canonical key is the
// orientation whose source sorts first, so one lookup finds the flow from
// either end.
func flowKey(p *packet.Packet, dir Direction) (key, bool) {
	k := key{src: p.Src.As16(), dst: p.Dst.As16(), proto: p.Proto, v6: p.Version == 6, dir: dir}
	switch {
	case p.HasPorts:
		k.srcPort, k.dstPort = uint32(p.SrcPort), uint32(p.DstPort)
	case p.IsICMPEcho() && isEchoRequest(p):
		k.srcPort = echoBit | uint32(p.ICMPID)
	case p.IsICMPEcho():
		k.dstPort = echoBit | uint32(p.ICMPID)
	}
	// A tuple that is its own reverse is one flow with its Out twin.
	c := bytes.Compare(k.src[:], k.dst[:])
	if c < 0 || c == 0 && (k.srcPort < k.dstPort || k.srcPort == k.dstPort && dir == Out) {
		return k, false
	}
	return k.reversed(), true
}

// fragmentKey returns the key under which the datagram of fragment p,
// seen in direction dir, is remembered.
func fragmentKey(p *packet.Packet, dir Direction) key {
	return key{src: p.Src.As16(), dst: p.Dst.As16(), proto: p.Proto, v6: p.Version == 6, dir: dir, srcPort: p.FragID}
}

// reversed returns the key of the reply: the tuple reversed, the other direction.
func (k *key) reversed() key {
	return key{src: k.dst, dst: k.src, srcPort: k.dstPort, dstPort: k.srcPort, proto: k.proto, v6: k.v6, dir: k.dir ^ 1}
}

// packet rebuilds the headers that matter to an Admitter of the first
// packet of the flow k (not canonicalised).
func (k *key) packet() packet.Packet {
	p := packet.Packet{Version: 4, Proto: k.proto, Src: netip.AddrFrom16(k.src).Unmap(), Dst: netip.AddrFrom16(k.dst).Unmap()}
	if k.v6 {
		p.Version, p.Src, p.Dst = 6, netip.AddrFrom16(k.src), netip.AddrFrom16(k.dst)
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

// hash mixes k's 44 bytes with three independent 64×64→128-bit
// multiplications (as wyhash does), about 15 cycles.
func (sd *seed) hash(k *key) uint64 {
	le := binary.LittleEndian
	misc := uint64(k.proto) | uint64(k.dir)<<8
	if k.v6 {
		misc |= 1 << 16
	}
	return mum(le.Uint64(k.src[:8])^sd[0], le.Uint64(k.src[8:])^sd[1]) ^
		mum(le.Uint64(k.dst[:8])^sd[2], le.Uint64(k.dst[8:])^sd[3]) ^
		mum(uint64(k.srcPort)|uint64(k.dstPort)<<32^sd[4], misc^sd[5])
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
