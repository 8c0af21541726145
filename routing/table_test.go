package routing

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// refTable is the slow, obviously correct model of Table: a list of
// prefixes scanned in full for the longest one that contains the address.
type refTable struct {
	entries []refEntry
}

type refEntry struct {
	p netip.Prefix
	v int
}

func (r *refTable) insert(p netip.Prefix, v int) {
	if !p.IsValid() {
		return
	}
	p = p.Masked()
	for i := range r.entries {
		if r.entries[i].p == p {
			r.entries[i].v = v
			return
		}
	}
	r.entries = append(r.entries, refEntry{p, v})
}

func (r *refTable) lookup(a netip.Addr) (int, bool) {
	best, bits := 0, -1
	for _, e := range r.entries {
		if e.p.Contains(a) && e.p.Bits() > bits {
			best, bits = e.v, e.p.Bits()
		}
	}
	return best, bits >= 0
}

// check compares the lookup of every address in addrs with ref.
func check(t testing.TB, tab *Table[int], ref *refTable, addrs []netip.Addr) {
	t.Helper()
	for _, a := range addrs {
		wantV, wantOK := ref.lookup(a)
		if v, ok := tab.Lookup(a); v != wantV || ok != wantOK {
			t.Fatalf("Lookup(%v) = %d, %t; want %d, %t", a, v, ok, wantV, wantOK)
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestTableLookup(t *testing.T) {
	const (
		none = iota
		hostA
		hostB
		subnetA
		overlay
		defaultV4
		hostA6
		subnetA6
		mapped
		defaultV6
	)
	var tab Table[int]
	for _, e := range []struct {
		p string
		v int
	}{
		{"10.100.0.1/32", hostA},
		{"10.100.0.2/32", hostB},
		{"172.20.1.0/24", subnetA},
		{"10.100.0.0/16", overlay},
		{"0.0.0.0/0", defaultV4},
		{"fd00::1/128", hostA6},
		{"fd00:1::/64", subnetA6},
		{"::ffff:10.100.0.0/112", mapped},
		{"::/0", defaultV6},
	} {
		tab.Insert(mustPrefix(e.p), e.v)
	}

	tests := []struct {
		name string
		addr string
		want int // none means no match
	}{
		{"host route beats covering overlay", "10.100.0.1", hostA},
		{"second host", "10.100.0.2", hostB},
		{"overlay without host route", "10.100.7.9", overlay},
		{"subnet", "172.20.1.200", subnetA},
		{"subnet neighbour falls to default", "172.20.2.1", defaultV4},
		{"lowest address of default", "0.0.0.0", defaultV4},
		{"highest address of default", "255.255.255.255", defaultV4},
		{"ipv6 host", "fd00::1", hostA6},
		{"ipv6 subnet", "fd00:1::abcd", subnetA6},
		{"ipv6 default", "2001:db8::1", defaultV6},
		{"v4-mapped matches only ipv6 prefixes", "::ffff:10.100.0.1", mapped},
		{"v4-mapped outside mapped prefix", "::ffff:10.101.0.1", defaultV6},
		{"zone ignored", "fd00::1%eth0", hostA6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			got, ok := tab.Lookup(a)
			if !ok || got != tt.want {
				t.Errorf("Lookup(%s): got %d, %t; want %d, true", tt.addr, got, ok, tt.want)
			}
		})
	}
}

func TestTableMisses(t *testing.T) {
	var empty Table[int]
	var tab Table[int]
	tab.Insert(mustPrefix("10.0.0.0/8"), 1)
	tab.Insert(mustPrefix("fd00::/8"), 2)
	tests := []struct {
		name string
		tab  *Table[int]
		addr netip.Addr
	}{
		{"empty table v4", &empty, netip.MustParseAddr("10.0.0.1")},
		{"empty table v6", &empty, netip.MustParseAddr("fd00::1")},
		{"outside v4", &tab, netip.MustParseAddr("11.0.0.1")},
		{"outside v6", &tab, netip.MustParseAddr("fe00::1")},
		{"v4-mapped not in v4 prefix", &tab, netip.MustParseAddr("::ffff:10.0.0.1")},
		{"zero Addr", &tab, netip.Addr{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := tt.tab.Lookup(tt.addr); ok {
				t.Errorf("Lookup(%v): got %d, true; want no match", tt.addr, got)
			}
		})
	}
}

func TestTableInsert(t *testing.T) {
	var tab Table[string]
	tab.Insert(mustPrefix("10.0.0.1/24"), "a") // host bits are dropped
	tab.Insert(mustPrefix("10.0.0.0/24"), "b") // same prefix: replaces a
	tab.Insert(mustPrefix("10.0.0.9/32"), "a")
	tab.Insert(mustPrefix("fd00::/64"), "a")
	tab.Insert(netip.Prefix{}, "bad") // ignored

	tests := []struct {
		addr string
		want string
	}{
		{"10.0.0.1", "b"},
		{"10.0.0.9", "a"},
		{"fd00::1", "a"},
	}
	for _, tt := range tests {
		if got, ok := tab.Lookup(netip.MustParseAddr(tt.addr)); !ok || got != tt.want {
			t.Errorf("Lookup(%s): got %q, %t; want %q, true", tt.addr, got, ok, tt.want)
		}
	}
	if got, want := len(tab.v4)+len(tab.v6)+len(tab.v6s), 3; got != want {
		t.Errorf("levels: got %d, want %d (/24, /32, /64)", got, want)
	}
}

// randomPrefix draws prefixes that overlap often: addresses come from a small
// pool, and the lengths favour the ends (/0, /32, /128) and common sizes.
func randomPrefix(r *rand.Rand, pool4, pool6 []netip.Addr) netip.Prefix {
	var a netip.Addr
	if r.IntN(2) == 0 {
		a = pool4[r.IntN(len(pool4))]
	} else {
		a = pool6[r.IntN(len(pool6))]
	}
	a = perturb(r, a)
	var bits int
	switch r.IntN(6) {
	case 0:
		bits = 0
	case 1:
		bits = a.BitLen()
	case 2:
		bits = a.BitLen() - 8*r.IntN(4)
	default:
		bits = r.IntN(a.BitLen() + 1)
	}
	return netip.PrefixFrom(a, bits)
}

// perturb flips a few random low-order bits of a.
func perturb(r *rand.Rand, a netip.Addr) netip.Addr {
	b := a.As16()
	for range r.IntN(3) {
		i := 15 - r.IntN(a.BitLen()/8)
		b[i] ^= 1 << r.IntN(8)
	}
	if a.Is4() {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

func randomAddrs(r *rand.Rand, n int) []netip.Addr {
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], r.Uint64())
		binary.BigEndian.PutUint64(b[8:], r.Uint64())
		if i%2 == 0 {
			addrs[i] = netip.AddrFrom4([4]byte(b[:4]))
		} else {
			addrs[i] = netip.AddrFrom16(b)
		}
	}
	return addrs
}

// probes returns addresses near and inside the prefixes (so lookups land on
// every level), fully random ones, and v4-mapped forms of IPv4 ones.
func probes(r *rand.Rand, ps []netip.Prefix, random int) []netip.Addr {
	addrs := randomAddrs(r, random)
	for _, p := range ps {
		a := p.Addr()
		addrs = append(addrs, a, perturb(r, a), a.Prev(), a.Next())
		if a.Is4() {
			addrs = append(addrs, netip.AddrFrom16(a.As16()))
		}
	}
	return slices.DeleteFunc(addrs, func(a netip.Addr) bool { return !a.IsValid() })
}

func TestTableRandom(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 0x0e1a7))
			pool4 := randomAddrs(r, 16)
			pool6 := randomAddrs(r, 16)
			for i := range pool4 {
				pool4[i] = netip.AddrFrom4([4]byte(pool4[i].AsSlice()[:4]))
				pool6[i] = netip.AddrFrom16([16]byte(slices.Repeat(pool6[i].AsSlice()[:4], 4)))
			}
			const values = 12
			var tab Table[int]
			var ref refTable
			var inserted []netip.Prefix
			for step := range 400 {
				p := randomPrefix(r, pool4, pool6)
				if len(inserted) > 0 && r.IntN(4) == 0 {
					p = inserted[r.IntN(len(inserted))] // replace a value
				}
				v := r.IntN(values)
				tab.Insert(p, v)
				ref.insert(p, v)
				inserted = append(inserted, p)
				if step%50 == 49 {
					check(t, &tab, &ref, probes(r, inserted, 200))
				}
			}
			check(t, &tab, &ref, probes(r, inserted, 1000))
		})
	}
}

func FuzzTable(f *testing.F) {
	f.Add([]byte{0, 0, 10, 0, 0, 1, 32, 1, 0, 0, 10, 0, 0, 0, 8, 2})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 3, 1, 1, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 128, 4})
	f.Add([]byte{0, 0, 10, 0, 0, 1, 32, 1, 2, 0, 10, 0, 0, 1, 32, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		// The reference is quadratic; longer inputs add time, not coverage.
		data = data[:min(len(data), 1024)]
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		prefix := func() netip.Prefix {
			var a netip.Addr
			if next()&1 == 0 {
				var b [4]byte
				for i := range b {
					b[i] = next()
				}
				a = netip.AddrFrom4(b)
			} else {
				var b [16]byte
				for i := range b {
					b[i] = next()
				}
				a = netip.AddrFrom16(b)
			}
			return netip.PrefixFrom(a, int(next())%(a.BitLen()+1))
		}
		const values = 8
		var tab Table[int]
		var ref refTable
		var seen []netip.Prefix
		for len(data) > 0 {
			p, v := prefix(), int(next()%values)
			tab.Insert(p, v)
			ref.insert(p, v)
			seen = append(seen, p)
		}
		var probe []netip.Addr
		for _, p := range seen {
			a := p.Addr()
			probe = append(probe, a, a.Prev(), a.Next(), p.Masked().Addr(), netip.AddrFrom16(a.As16()))
		}
		probe = slices.DeleteFunc(probe, func(a netip.Addr) bool { return !a.IsValid() })
		check(t, &tab, &ref, probe)
	})
}

type benchPeer struct{ id int }

// meshTable builds the table of a mesh of n peers, each owning an IPv4 and
// an IPv6 host route, a /24 and a /64 subnet, and returns addresses to look
// up: hosts, subnet members and (one in eight) addresses outside the mesh.
func meshTable(n int) (*Table[*benchPeer], []netip.Addr) {
	var tab Table[*benchPeer]
	var addrs []netip.Addr
	for i := range n {
		p := &benchPeer{i}
		h4 := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		var b [16]byte
		b[0], b[13], b[14], b[15] = 0xfd, byte(i>>16), byte(i>>8), byte(i)
		h6 := netip.AddrFrom16(b)
		s4 := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i>>8), byte(i), 0}), 24)
		b = [16]byte{0: 0xfd, 1: 0x01, 6: byte(i >> 8), 7: byte(i)}
		s6 := netip.PrefixFrom(netip.AddrFrom16(b), 64)
		tab.Insert(netip.PrefixFrom(h4, 32), p)
		tab.Insert(netip.PrefixFrom(h6, 128), p)
		tab.Insert(s4, p)
		tab.Insert(s6, p)
		addrs = append(addrs, h4, h6, s4.Addr().Next(), s6.Addr().Next())
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	for i := 0; i < len(addrs); i += 8 {
		addrs[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	return &tab, addrs
}

func TestTableNoAllocs(t *testing.T) {
	tab, addrs := meshTable(100)
	got := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			tab.Lookup(a)
		}
	})
	if got != 0 {
		t.Errorf("Lookup: got %v allocs per run, want 0", got)
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{10, 10000} {
		tab, addrs := meshTable(n)
		// Per kind, to show what one probe (host route) and several probes
		// (subnet member, miss) cost.
		kinds := []struct {
			name string
			addr netip.Addr
		}{
			{"mixed", netip.Addr{}},
			{"host4", netip.MustParseAddr("10.0.0.5")},
			{"subnet4", netip.MustParseAddr("172.16.5.9")},
			{"miss4", netip.MustParseAddr("192.0.2.1")},
			{"host6", netip.MustParseAddr("fd00::5")},
			{"subnet6", netip.MustParseAddr("fd01:0:0:5::9")},
		}
		for _, k := range kinds {
			b.Run(fmt.Sprintf("peers=%d/%s", n, k.name), func(b *testing.B) {
				b.ReportAllocs()
				var hits int
				for i := 0; b.Loop(); i++ {
					a := k.addr
					if !a.IsValid() {
						a = addrs[i%len(addrs)]
					}
					if _, ok := tab.Lookup(a); ok {
						hits++
					}
				}
				_ = hits
			})
		}
	}
}
