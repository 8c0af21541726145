package policy

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// decideReference is the slow, obvious evaluator: every rule in order.
func decideReference(rules []Rule, src, dst netip.Addr, proto uint8, port uint16) Verdict {
	if len(rules) == 0 {
		return Verdict{Allow: true, Rule: -1, Reason: NoPolicy}
	}
	src, dst = src.Unmap(), dst.Unmap()
	contains := func(ps []netip.Prefix, a netip.Addr) bool {
		for _, p := range ps {
			if p.IsValid() && p.Contains(a) {
				return true
			}
		}
		return false
	}
	admits := func(r Rule) bool {
		if len(r.Ports) == 0 {
			return true
		}
		for _, pt := range r.Ports {
			switch {
			case pt.Any:
				return true
			case pt.Proto == ProtoICMP && (proto == ProtoICMP || proto == ProtoICMPv6):
				return true
			case pt.Proto == proto && (proto == ProtoTCP || proto == ProtoUDP) && pt.Lo <= port && port <= pt.Hi:
				return true
			}
		}
		return false
	}
	anyFrom, anyFromTo := false, false
	for i, r := range rules {
		if !contains(r.From, src) {
			continue
		}
		anyFrom = true
		if !contains(r.To, dst) {
			continue
		}
		anyFromTo = true
		if admits(r) {
			return Verdict{Allow: true, Rule: i, Reason: Allowed}
		}
	}
	switch {
	case !anyFrom:
		return Verdict{Rule: -1, Reason: NoSource}
	case !anyFromTo:
		return Verdict{Rule: -1, Reason: NoDestination}
	}
	return Verdict{Rule: -1, Reason: NoPort}
}

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func mustPorts(t testing.TB, ss ...string) []Ports {
	t.Helper()
	var out []Ports
	for _, s := range ss {
		p, err := ParsePorts(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// testRules is a small web/db/admin mesh.
func testRules(t testing.TB) []Rule {
	return []Rule{
		{Name: "web-to-db", Pos: "m:10", From: mustPrefixes(t, "10.0.1.0/24", "fd00:1::/64"), To: mustPrefixes(t, "10.0.2.5/32"), Ports: mustPorts(t, "5432/tcp")},
		{Name: "admin", Pos: "m:15", From: mustPrefixes(t, "10.0.9.1/32"), To: mustPrefixes(t, "0.0.0.0/0", "::/0")},
		{Name: "web-http", Pos: "m:19", From: mustPrefixes(t, "0.0.0.0/0", "::/0"), To: mustPrefixes(t, "10.0.1.0/24", "fd00:1::/64"), Ports: mustPorts(t, "80/tcp", "443/tcp", "8000-8100/tcp", "icmp")},
		{Name: "dns", Pos: "m:24", From: mustPrefixes(t, "10.0.0.0/16"), To: mustPrefixes(t, "10.0.3.53/32"), Ports: mustPorts(t, "53/udp", "53/tcp")},
	}
}

func TestDecide(t *testing.T) {
	p := Compile(testRules(t))
	a := netip.MustParseAddr
	tests := []struct {
		src, dst string
		proto    uint8
		port     uint16
		want     Verdict
	}{
		{"10.0.1.7", "10.0.2.5", ProtoTCP, 5432, Verdict{true, 0, Allowed}},
		{"10.0.1.7", "10.0.2.5", ProtoTCP, 5433, Verdict{false, -1, NoPort}},
		{"10.0.1.7", "10.0.2.5", ProtoUDP, 5432, Verdict{false, -1, NoPort}},
		{"10.0.1.7", "10.0.2.6", ProtoTCP, 5432, Verdict{false, -1, NoDestination}},
		{"10.0.9.1", "10.0.2.5", ProtoUDP, 9, Verdict{true, 1, Allowed}},
		{"10.0.9.1", "fd00:1::1", 47, 0, Verdict{true, 1, Allowed}},
		{"192.0.2.1", "10.0.1.1", ProtoTCP, 8050, Verdict{true, 2, Allowed}},
		{"192.0.2.1", "10.0.1.1", ProtoTCP, 8101, Verdict{false, -1, NoPort}},
		{"192.0.2.1", "10.0.1.1", ProtoICMP, 0, Verdict{true, 2, Allowed}},
		{"2001:db8::1", "fd00:1::9", ProtoICMPv6, 0, Verdict{true, 2, Allowed}},
		{"2001:db8::1", "fd00:2::9", ProtoICMPv6, 0, Verdict{false, -1, NoDestination}},
		{"::ffff:10.0.1.7", "::ffff:10.0.2.5", ProtoTCP, 5432, Verdict{true, 0, Allowed}},
		{"10.0.4.4", "10.0.3.53", ProtoUDP, 53, Verdict{true, 3, Allowed}},
		{"10.1.4.4", "10.0.3.53", ProtoUDP, 53, Verdict{false, -1, NoDestination}},
		{"10.0.1.7", "10.0.1.8", 47, 0, Verdict{false, -1, NoPort}},
	}
	for _, tt := range tests {
		got := p.Decide(a(tt.src), a(tt.dst), tt.proto, tt.port)
		if got != tt.want {
			t.Errorf("%s -> %s %d/%d: got %+v, want %+v", tt.src, tt.dst, tt.port, tt.proto, got, tt.want)
		}
		if ref := decideReference(testRules(t), a(tt.src), a(tt.dst), tt.proto, tt.port); ref != got {
			t.Errorf("%s -> %s: compiled %+v, reference %+v", tt.src, tt.dst, got, ref)
		}
	}
	// Only one rule starts from this source, and none covers 10.1.0.0.
	onlyAdmin := Compile(testRules(t)[1:2])
	if got := onlyAdmin.Decide(a("10.0.1.7"), a("10.0.9.1"), ProtoTCP, 22); got.Reason != NoSource {
		t.Errorf("got %+v, want reason NoSource", got)
	}
}

func TestNilPolicyAllowsAll(t *testing.T) {
	p := Compile(nil)
	if p != nil {
		t.Fatalf("Compile(nil) = %v, want nil", p)
	}
	v := p.Decide(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), ProtoTCP, 22)
	if !v.Allow || v.Reason != NoPolicy || v.Rule != -1 {
		t.Errorf("got %+v, want allow by NoPolicy", v)
	}
	if p.Hash() != "" || p.Rules() != 0 {
		t.Errorf("nil policy: hash %q, %d rules; want empty", p.Hash(), p.Rules())
	}
}

func TestExplain(t *testing.T) {
	p := Compile(testRules(t))
	a := netip.MustParseAddr
	tests := []struct {
		src, dst string
		port     uint16
		want     string
	}{
		{"10.0.1.7", "10.0.2.5", 5432, `rule "web-to-db" (m:10) allows 5432/tcp from web1 to db1`},
		{"10.0.1.7", "10.0.2.5", 22, "rules allow traffic from web1 to db1, but not 22/tcp"},
		{"10.0.1.7", "10.0.2.6", 22, "rules allow traffic from web1, but none to db1"},
	}
	for _, tt := range tests {
		v := p.Decide(a(tt.src), a(tt.dst), ProtoTCP, tt.port)
		if got := p.Explain(v, "web1", "db1", ProtoTCP, tt.port); !strings.Contains(got, tt.want) {
			t.Errorf("got %q, want it to contain %q", got, tt.want)
		}
	}
	only := Compile(testRules(t)[3:])
	v := only.Decide(a("192.0.2.1"), a("10.0.3.53"), ProtoUDP, 53)
	if got, want := only.Explain(v, "x", "y", ProtoUDP, 53), "no rule allows 53/udp from x to y: no rule allows anything from x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHash(t *testing.T) {
	rules := testRules(t)
	h := Compile(rules).Hash()
	if len(h) != 64 {
		t.Fatalf("got hash %q, want 64 hex digits", h)
	}
	// Where a rule is written, and the order of its prefixes and ports, do not count.
	moved := testRules(t)
	moved[0].Pos = "other.toml:99"
	moved[2].Ports = mustPorts(t, "icmp", "8000-8100/tcp", "443/tcp", "80/tcp", "80/tcp")
	moved[2].To = mustPrefixes(t, "fd00:1::/64", "10.0.1.0/24")
	if got := Compile(moved).Hash(); got != h {
		t.Errorf("hash changed with positions and order: %s, want %s", got, h)
	}
	// What the rules allow does count.
	changed := testRules(t)
	changed[0].Ports = mustPorts(t, "5433/tcp")
	if got := Compile(changed).Hash(); got == h {
		t.Error("hash unchanged when a port changed")
	}
	renamed := testRules(t)
	renamed[1].Name = "ops"
	if got := Compile(renamed).Hash(); got == h {
		t.Error("hash unchanged when a rule was renamed")
	}
}

func TestCompileCopiesRules(t *testing.T) {
	rules := testRules(t)
	p := Compile(rules)
	rules[0].From[0] = netip.MustParsePrefix("192.0.2.0/24")
	if got := p.Rule(0).From[0]; got != netip.MustParsePrefix("10.0.1.0/24") {
		t.Errorf("the policy changed with its input: %v", got)
	}
}

func TestDecideNoAllocs(t *testing.T) {
	p := Compile(manyRules(rand.New(rand.NewPCG(1, 1)), 100))
	src, dst := netip.MustParseAddr("10.0.3.4"), netip.MustParseAddr("fd00::7")
	var sink Verdict
	allocs := testing.AllocsPerRun(1000, func() {
		sink = p.Decide(src, dst, ProtoTCP, 443)
		sink = p.Decide(dst, src, ProtoICMP, 0)
	})
	if allocs != 0 {
		t.Errorf("got %.1f allocations per Decide, want 0", allocs)
	}
	_ = sink
}

// manyRules makes n rules like a real mesh's: a few /32s and /24s each,
// some "*", a few ports.
func manyRules(rng *rand.Rand, n int) []Rule {
	var rules []Rule
	prefix := func() netip.Prefix {
		if rng.IntN(5) == 0 {
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0: 0xfd, 14: byte(rng.IntN(16)), 15: byte(rng.IntN(256))}), 120+rng.IntN(9)).Masked()
		}
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(16)), byte(rng.IntN(256))}), 24+rng.IntN(9)).Masked()
	}
	for i := range n {
		r := Rule{Name: fmt.Sprintf("allow-%d", i+1), Pos: fmt.Sprintf("mesh.toml:%d", 10+5*i)}
		for range 1 + rng.IntN(4) {
			r.From = append(r.From, prefix())
			r.To = append(r.To, prefix())
		}
		if rng.IntN(10) == 0 {
			r.From = append(r.From, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
		}
		for range rng.IntN(4) {
			switch rng.IntN(4) {
			case 0:
				r.Ports = append(r.Ports, Ports{Proto: ProtoICMP})
			case 1:
				lo := uint16(1 + rng.IntN(10000))
				r.Ports = append(r.Ports, Ports{Proto: ProtoUDP, Lo: lo, Hi: lo + uint16(rng.IntN(100))})
			default:
				lo := uint16(1 + rng.IntN(10000))
				r.Ports = append(r.Ports, Ports{Proto: ProtoTCP, Lo: lo, Hi: lo})
			}
		}
		rules = append(rules, r)
	}
	return rules
}

func TestCompiledMatchesReferenceRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		rules := manyRules(rng, 1+rng.IntN(150))
		p := Compile(rules)
		for range 500 {
			r := rules[rng.IntN(len(rules))]
			// Mostly addresses the rules mention, so that verdicts vary.
			src := r.From[rng.IntN(len(r.From))].Addr()
			dst := r.To[rng.IntN(len(r.To))].Addr()
			if rng.IntN(3) == 0 {
				dst = rules[rng.IntN(len(rules))].To[0].Addr()
			}
			proto := []uint8{ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, 47}[rng.IntN(5)]
			port := uint16(rng.IntN(10200))
			got, want := p.Decide(src, dst, proto, port), decideReference(rules, src, dst, proto, port)
			if got != want {
				t.Fatalf("%s -> %s proto %d port %d: compiled %+v, reference %+v", src, dst, proto, port, got, want)
			}
		}
	}
}

// FuzzCompiledMatchesReference builds a rule set and a packet from the fuzz
// bytes and checks that the compiled policy decides as the reference does.
func FuzzCompiledMatchesReference(f *testing.F) {
	f.Add([]byte("\x03\x01\x0a\x00\x00\x00\x08\x01\x0a\x00\x00\x01\x20\x06\x00\x50\x00\x50"), []byte("\x0a\x00\x00\x05\x0a\x00\x00\x01\x06\x00\x50"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), []byte("\x11\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x11\x00\x35"))
	f.Fuzz(func(t *testing.T, ruleBytes, packet []byte) {
		rules := rulesFromBytes(ruleBytes)
		p := Compile(rules)
		in := reader{b: packet}
		src, dst := in.addr(), in.addr()
		proto := []uint8{ProtoTCP, ProtoUDP, ProtoICMP, ProtoICMPv6, 47}[in.byte()%5]
		port := in.uint16()
		got, want := p.Decide(src, dst, proto, port), decideReference(rules, src, dst, proto, port)
		if got != want {
			t.Fatalf("rules %+v\n%s -> %s proto %d port %d: compiled %+v, reference %+v", rules, src, dst, proto, port, got, want)
		}
	})
}

// reader takes values from fuzz bytes, zeros once they run out.
type reader struct{ b []byte }

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uint16() uint16 { return uint16(r.byte())<<8 | uint16(r.byte()) }

// addr reads a family byte, then 4 or 16 address bytes. Few bits vary in
// IPv6, so that fuzzed rules and packets meet.
func (r *reader) addr() netip.Addr {
	if r.byte()%4 != 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(r.byte())<<24|uint32(r.byte())<<16|uint32(r.byte())<<8|uint32(r.byte()))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	b[0], b[14], b[15] = r.byte(), r.byte(), r.byte()
	return netip.AddrFrom16(b)
}

func (r *reader) prefix() netip.Prefix {
	a := r.addr()
	return netip.PrefixFrom(a, int(r.byte())%(a.BitLen()+1))
}

// rulesFromBytes builds up to 70 rules (more than one bitset word).
func rulesFromBytes(b []byte) []Rule {
	in := reader{b: b}
	var rules []Rule
	for len(in.b) > 0 && len(rules) < 70 {
		r := Rule{Name: fmt.Sprintf("r%d", len(rules))}
		n := in.byte()
		for range 1 + n%3 {
			r.From = append(r.From, in.prefix())
		}
		for range 1 + (n>>2)%3 {
			r.To = append(r.To, in.prefix())
		}
		for range (n >> 4) % 4 {
			switch k := in.byte(); k % 4 {
			case 0:
				r.Ports = append(r.Ports, AnyPorts)
			case 1:
				r.Ports = append(r.Ports, Ports{Proto: ProtoICMP})
			default:
				lo, hi := in.uint16(), in.uint16()
				if lo > hi {
					lo, hi = hi, lo
				}
				proto := uint8(ProtoTCP)
				if k%4 == 3 {
					proto = ProtoUDP
				}
				r.Ports = append(r.Ports, Ports{Proto: proto, Lo: lo, Hi: hi})
			}
		}
		rules = append(rules, r)
	}
	return rules
}

func BenchmarkDecide(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	rules := manyRules(rng, 100)
	p := Compile(rules)
	type flow struct {
		src, dst netip.Addr
		proto    uint8
		port     uint16
	}
	flows := make([]flow, 1024)
	for i := range flows {
		r := rules[rng.IntN(len(rules))]
		flows[i] = flow{r.From[0].Addr(), r.To[0].Addr(), []uint8{ProtoTCP, ProtoUDP, ProtoICMP}[rng.IntN(3)], uint16(rng.IntN(10200))}
	}
	b.ReportAllocs()
	allowed := 0
	for i := 0; b.Loop(); i++ {
		f := &flows[i%len(flows)]
		if p.Decide(f.src, f.dst, f.proto, f.port).Allow {
			allowed++
		}
	}
	b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
}
