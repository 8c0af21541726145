package routing

import (
	"encoding/binary"
	"maps"
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
// Lookup and LookupBytes may run concurrently with each other, but not with
// Insert, Delete or RemoveValue. A table that packets are looked up in is
// therefore treated as immutable: the engine publishes it through an atomic
// pointer and, to change it, mutates a Clone (or builds a new table) and swaps
// the pointer (copy-on-write). Configuration changes are rare and lookups
// happen per packet, so the O(n) copy is the right trade. A lock around every
// access would also do, at a cost per packet.
type Table[V comparable] struct {
	// Prefix lengths present, longest first. IPv6 prefixes of up to 64 bits
	// are keyed by their upper half alone, which hashes on the runtime's fast
	// path for 8-byte keys.
	v4  []level[uint32, V] // IPv4 /0../32
	v6  []level[addr6, V]  // IPv6 /65../128
	v6s []level[uint64, V] // IPv6 /0../64

	// byValue indexes the prefixes of each value, so that Prefixes and
	// RemoveValue cost O(prefixes of that value) rather than O(table).
	// Each slice is unordered.
	byValue map[V][]netip.Prefix
	n       int
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
	var old V
	var existed bool
	switch a, bits := p.Addr(), p.Bits(); {
	case a.Is4():
		old, existed = set(&t.v4, key4(a), uint8(bits), mask4(bits), v)
	case bits <= 64:
		old, existed = set(&t.v6s, key6(a).hi, uint8(bits), mask6(bits).hi, v)
	default:
		old, existed = set(&t.v6, key6(a), uint8(bits), mask6(bits), v)
	}
	if existed {
		if old == v {
			return
		}
		t.unindex(old, p)
	} else {
		t.n++
	}
	if t.byValue == nil {
		t.byValue = make(map[V][]netip.Prefix)
	}
	t.byValue[v] = append(t.byValue[v], p)
}

// Delete removes prefix p (host bits ignored) and reports whether it was in
// the table.
func (t *Table[V]) Delete(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	p = p.Masked()
	old, ok := t.remove(p)
	if ok {
		t.unindex(old, p)
		t.n--
	}
	return ok
}

// RemoveValue removes every prefix that maps to v.
func (t *Table[V]) RemoveValue(v V) {
	ps, ok := t.byValue[v]
	if !ok {
		return
	}
	for _, p := range ps {
		t.remove(p)
	}
	t.n -= len(ps)
	delete(t.byValue, v)
}

// Lookup returns the value of the longest prefix that contains a, and
// reports whether there is one. An IPv4-mapped IPv6 address is looked up
// among the IPv6 prefixes only, as netip.Prefix.Contains does; a zone is
// ignored. Lookup does not allocate.
func (t *Table[V]) Lookup(a netip.Addr) (V, bool) {
	if a.Is4() {
		b := a.As4()
		return t.lookup4(binary.BigEndian.Uint32(b[:]))
	}
	if a.Is6() {
		b := a.As16()
		return t.lookup6(addr6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])})
	}
	var zero V
	return zero, false
}

// LookupBytes is Lookup for a raw address taken straight from a packet
// header: 4 bytes for IPv4, 16 bytes for IPv6. Any other length finds
// nothing. LookupBytes does not allocate and does not retain ip.
func (t *Table[V]) LookupBytes(ip []byte) (V, bool) {
	switch len(ip) {
	case 4:
		return t.lookup4(binary.BigEndian.Uint32(ip))
	case 16:
		return t.lookup6(addr6{binary.BigEndian.Uint64(ip[:8]), binary.BigEndian.Uint64(ip[8:])})
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

// Prefixes returns the prefixes that map to v, masked and sorted (IPv4
// first, then by address and length). The caller owns the returned slice.
func (t *Table[V]) Prefixes(v V) []netip.Prefix {
	ps := slices.Clone(t.byValue[v])
	slices.SortFunc(ps, netip.Prefix.Compare)
	return ps
}

// Len returns the number of prefixes in the table.
func (t *Table[V]) Len() int { return t.n }

// Clone returns an independent copy of t: mutating either leaves the other
// unchanged. Values themselves are copied, not deep-copied, so pointer values
// are shared. Clone supports the copy-on-write update described on Table.
func (t *Table[V]) Clone() *Table[V] {
	c := &Table[V]{
		v4:  cloneLevels(t.v4),
		v6:  cloneLevels(t.v6),
		v6s: cloneLevels(t.v6s),
		n:   t.n,
	}
	if t.byValue != nil {
		c.byValue = make(map[V][]netip.Prefix, len(t.byValue))
		// One backing array for all values; each slice is capped at its
		// length, so a later append reallocates instead of overwriting a
		// neighbour.
		all := make([]netip.Prefix, 0, t.n)
		for v, ps := range t.byValue {
			start := len(all)
			all = append(all, ps...)
			c.byValue[v] = all[start:len(all):len(all)]
		}
	}
	return c
}

// remove deletes masked prefix p from its level without touching byValue.
func (t *Table[V]) remove(p netip.Prefix) (V, bool) {
	switch a, bits := p.Addr(), uint8(p.Bits()); {
	case a.Is4():
		return del(&t.v4, key4(a), bits)
	case bits <= 64:
		return del(&t.v6s, key6(a).hi, bits)
	default:
		return del(&t.v6, key6(a), bits)
	}
}

// unindex removes masked prefix p from the index of v.
func (t *Table[V]) unindex(v V, p netip.Prefix) {
	ps := t.byValue[v]
	i := slices.Index(ps, p)
	if i < 0 {
		return
	}
	last := len(ps) - 1
	ps[i] = ps[last]
	ps[last] = netip.Prefix{}
	if last == 0 {
		delete(t.byValue, v)
		return
	}
	t.byValue[v] = ps[:last]
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

func set[K, V comparable](levels *[]level[K, V], k K, bits uint8, mask K, v V) (old V, existed bool) {
	i, ok := find(*levels, bits)
	if !ok {
		*levels = slices.Insert(*levels, i, level[K, V]{mask: mask, m: make(map[K]V), bits: bits})
	}
	m := (*levels)[i].m
	old, existed = m[k]
	m[k] = v
	return old, existed
}

func del[K, V comparable](levels *[]level[K, V], k K, bits uint8) (old V, existed bool) {
	i, ok := find(*levels, bits)
	if !ok {
		return old, false
	}
	m := (*levels)[i].m
	old, existed = m[k]
	if !existed {
		return old, false
	}
	delete(m, k)
	if len(m) == 0 {
		// Drop the empty level so lookups stop probing it.
		*levels = slices.Delete(*levels, i, i+1)
	}
	return old, true
}

func cloneLevels[K, V comparable](levels []level[K, V]) []level[K, V] {
	if levels == nil {
		return nil
	}
	c := make([]level[K, V], len(levels))
	for i, l := range levels {
		c[i] = level[K, V]{mask: l.mask, m: maps.Clone(l.m), bits: l.bits}
	}
	return c
}

// key4 returns a masked IPv4 address as a map key.
func key4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// key6 returns a masked IPv6 address as a map key.
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
