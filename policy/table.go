package policy

import (
	"net/netip"
	"slices"
)

// A table splits a key space (addresses of one family, or ports) into
// intervals at every boundary of every rule's ranges. All keys of one
// interval are covered by the same rules, so the interval's bitset answers
// for any key in it. starts[0] is the smallest key; interval k runs from
// starts[k] to starts[k+1]-1, and its bitset is bits[k*words:(k+1)*words].

// u128 is an address as a number: IPv4 in lo, IPv6 in hi and lo.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) next() u128 {
	if a.lo == ^uint64(0) {
		return u128{a.hi + 1, 0}
	}
	return u128{a.hi, a.lo + 1}
}

func fromAddr(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var x u128
	for i := range 8 {
		x.hi = x.hi<<8 | uint64(b[i])
		x.lo = x.lo<<8 | uint64(b[8+i])
	}
	return x
}

// lastOf returns the highest address of p, with p's first address.
func lastOf(p netip.Prefix) (first, last u128) {
	first = fromAddr(p.Masked().Addr())
	host := p.Addr().BitLen() - p.Bits() // host bits
	last = first
	switch {
	case host >= 64:
		last.lo = ^uint64(0)
		last.hi |= ^uint64(0) >> (128 - host)
	case host > 0:
		last.lo |= ^uint64(0) >> (64 - host)
	}
	return first, last
}

// intervals is one family's table.
type intervals struct {
	starts []u128
	bits   []uint64
}

// addrTable maps an address to the rules whose prefixes cover it.
type addrTable struct {
	words  int
	v4, v6 intervals
	none   []uint64 // for an invalid address: no rule
}

type span struct {
	first, last u128
	rule        int
}

func buildAddrTable(words int, rules []Rule, prefixes func(*Rule) []netip.Prefix) addrTable {
	t := addrTable{words: words, none: make([]uint64, words)}
	var v4, v6 []span
	for i := range rules {
		for _, p := range prefixes(&rules[i]) {
			if !p.IsValid() {
				continue
			}
			first, last := lastOf(p)
			if p.Addr().Is4() {
				v4 = append(v4, span{first, last, i})
			} else {
				v6 = append(v6, span{first, last, i})
			}
		}
	}
	t.v4 = buildIntervals(words, v4, u128{0, 1<<32 - 1})
	t.v6 = buildIntervals(words, v6, u128{^uint64(0), ^uint64(0)})
	return t
}

// buildIntervals builds the table of spans over keys 0..max.
func buildIntervals(words int, spans []span, max u128) intervals {
	starts := []u128{{}}
	for _, s := range spans {
		starts = append(starts, s.first)
		if s.last != max {
			starts = append(starts, s.last.next())
		}
	}
	cmp := func(a, b u128) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	}
	slices.SortFunc(starts, cmp)
	starts = slices.Compact(starts)
	iv := intervals{starts: starts, bits: make([]uint64, len(starts)*words)}
	for _, s := range spans {
		lo, _ := slices.BinarySearchFunc(starts, s.first, cmp)
		hi := len(starts)
		if s.last != max {
			hi, _ = slices.BinarySearchFunc(starts, s.last.next(), cmp)
		}
		for k := lo; k < hi; k++ {
			setBit(iv.bits[k*words:], s.rule)
		}
	}
	return iv
}

// lookup returns the rules covering key: a bitset owned by the table.
func (iv *intervals) lookup(words int, key u128) []uint64 {
	// The last interval whose start is <= key; starts[0] is 0.
	lo, hi := 0, len(iv.starts)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if key.less(iv.starts[mid]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return iv.bits[lo*words : (lo+1)*words]
}

func (t *addrTable) lookup(a netip.Addr) []uint64 {
	a = a.Unmap()
	switch {
	case a.Is4():
		return t.v4.lookup(t.words, fromAddr(a))
	case a.Is6():
		return t.v6.lookup(t.words, fromAddr(a))
	}
	return t.none
}

// portTable maps a destination port of one protocol to the rules admitting it.
type portTable struct {
	words int
	iv    intervals
}

func buildPortTable(words int, rules []Rule, proto uint8) portTable {
	var spans []span
	for i := range rules {
		for _, pt := range portsOf(&rules[i]) {
			switch {
			case pt.Any:
				spans = append(spans, span{u128{}, u128{0, 65535}, i})
			case pt.Proto == proto:
				spans = append(spans, span{u128{0, uint64(pt.Lo)}, u128{0, uint64(pt.Hi)}, i})
			}
		}
	}
	return portTable{words: words, iv: buildIntervals(words, spans, u128{0, 65535})}
}

func (t *portTable) lookup(port uint16) []uint64 {
	return t.iv.lookup(t.words, u128{0, uint64(port)})
}
