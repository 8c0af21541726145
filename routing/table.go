package routing

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// Table is a longest-prefix-match table from IP prefixes to values of type V,
// covering IPv4 and IPv6. It is WireGuard's allowed-IPs table: V is usually
// the peer that owns the prefixes.
//
// The zero value is an empty table ready to use.
//
// # Layout
//
// Each address family keeps one hash map per prefix length present, keyed by
// the masked address, and the lengths are searched longest first. A lookup
// therefore costs one map probe per distinct prefix length tried, and a mesh
// whose peers own host routes finds them with the first probe. Meshes use few
// distinct lengths (/32 and /128 host routes, a handful of subnet sizes, maybe
// a default route), so this beats a path-compressed binary trie, which follows
// one pointer per branching bit: with 10,000 peers the trie was about three
// times slower. The worst case, a table holding every length, is 33 probes
// for IPv4 and 129 for IPv6. Lookups allocate nothing.
//
// # Concurrency
//
// Lookups may run concurrently with each other, but not with Insert. A table
// that packets are looked up in is therefore treated as immutable: the engine
// builds a new table for every configuration and publishes it through an
// atomic pointer. Configuration changes are rare and lookups happen per
// packet, so rebuilding is the right trade; a lock around every access would
// cost per packet.
type Table[V comparable] struct {
	// Prefix lengths present, longest first. IPv6 prefixes of up to 64 bits
	// are keyed by their upper half alone, which hashes on the runtime's fast
	// path for 8-byte keys.
	v4  []level[uint32, V] // IPv4 /0../32
	v6  []level[addr6, V]  // IPv6 /65../128
	v6s []level[uint64, V] // IPv6 /0../64
}

// addr6 is an IPv6 address as two big-endian halves, so that masking is two
// ANDs and the map key hashes as 16 plain bytes.
type addr6 struct{ hi, lo uint64 }

// level holds the prefixes of one length of one address family.
type level[K comparable, V comparable] struct {
	mask K       // network mask of this length
	m    map[K]V // masked address -> value; never empty
	bits uint8   // prefix length
}

// Insert maps prefix p to v, replacing the value of an identical prefix.
// Host bits of p are ignored: 10.0.0.1/24 and 10.0.0.0/24 are the same
// prefix. An IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) is an IPv6 prefix
// and matches only IPv6 addresses. Insert ignores an invalid prefix.
func (t *Table[V]) Insert(p netip.Prefix, v V) {
	if !p.IsValid() {
		return
	}
	p = p.Masked()
	switch a, bits := p.Addr(), p.Bits(); {
	case a.Is4():
		set(&t.v4, key4(a), uint8(bits), mask4(bits), v)
	case bits <= 64:
		set(&t.v6s, key6(a).hi, uint8(bits), mask6(bits).hi, v)
	default:
		set(&t.v6, key6(a), uint8(bits), mask6(bits), v)
	}
}

// Lookup returns the value of the longest prefix that contains a, and
// reports whether there is one. An IPv4-mapped IPv6 address is looked up
// among the IPv6 prefixes only, as netip.Prefix.Contains does; a zone is
// ignored. Lookup does not allocate.
func (t *Table[V]) Lookup(a netip.Addr) (V, bool) {
	if a.Is4() {
		return t.lookup4(key4(a))
	}
	if a.Is6() {
		return t.lookup6(key6(a))
	}
	var zero V
	return zero, false
}

func (t *Table[V]) lookup4(a uint32) (V, bool) {
	for i := range t.v4 {
		l := &t.v4[i]
		if v, ok := l.m[a&l.mask]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

func (t *Table[V]) lookup6(a addr6) (V, bool) {
	for i := range t.v6 {
		l := &t.v6[i]
		if v, ok := l.m[addr6{a.hi & l.mask.hi, a.lo & l.mask.lo}]; ok {
			return v, true
		}
	}
	for i := range t.v6s {
		l := &t.v6s[i]
		if v, ok := l.m[a.hi&l.mask]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}

// find returns the index of the level of the given length in levels (sorted
// longest first), or where it would be inserted.
func find[K, V comparable](levels []level[K, V], bits uint8) (int, bool) {
	for i := range levels {
		if levels[i].bits <= bits {
			return i, levels[i].bits == bits
		}
	}
	return len(levels), false
}

// set maps masked key k of the given length to v, adding the level if it
// is the first prefix of that length.
func set[K, V comparable](levels *[]level[K, V], k K, bits uint8, mask K, v V) {
	i, ok := find(*levels, bits)
	if !ok {
		*levels = slices.Insert(*levels, i, level[K, V]{mask: mask, m: make(map[K]V), bits: bits})
	}
	(*levels)[i].m[k] = v
}

// key4 returns an IPv4 address as a map key (masked by the caller).
func key4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// key6 returns an IPv6 address as a map key (masked by the caller).
func key6(a netip.Addr) addr6 {
	b := a.As16()
	return addr6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func mask4(bits int) uint32 {
	return ^uint32(0) << (32 - bits) // a shift by 32 yields 0 for /0
}

func mask6(bits int) addr6 {
	if bits <= 64 {
		return addr6{hi: ^uint64(0) << (64 - bits)}
	}
	return addr6{hi: ^uint64(0), lo: ^uint64(0) << (128 - bits)}
}
