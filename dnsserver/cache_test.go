package dnsserver

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/overlay-node/overlay-node/dnszone"
)

// downNodes is a Health with the nodes it holds unreachable. It is safe for
// concurrent use and does not allocate.
type downNodes struct {
	mu   sync.Mutex
	down map[string]bool
}

func (d *downNodes) Reachable(node string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.down[node]
}

func (d *downNodes) set(nodes ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = make(map[string]bool)
	for _, n := range nodes {
		d.down[n] = true
	}
}

// nodes returns n nodes n0… with addresses in 10.101/16.
func nodes(n int) []dnszone.Node {
	var out []dnszone.Node
	for i := range n {
		out = append(out, dnszone.Node{Name: fmt.Sprintf("n%d", i), Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 101, byte(i / 256), byte(i%256 + 1)})}})
	}
	return out
}

// ask is a query: a question and how it is sent.
type ask struct {
	name  string
	qtype uint16
	class uint16 // 0: IN
	edns  uint16 // UDP size; 0: no EDNS0
	do    bool
	rd    bool
	cd    bool
	opt   dns.EDNS0 // an option of the OPT record
}

func (a ask) pack(t testing.TB) []byte {
	t.Helper()
	m := new(dns.Msg).SetQuestion(a.name, a.qtype)
	m.Id = 0xbeef
	m.RecursionDesired, m.CheckingDisabled = a.rd, a.cd
	if a.class != 0 {
		m.Question[0].Qclass = a.class
	}
	if a.edns != 0 {
		m.SetEdns0(a.edns, a.do)
		if a.opt != nil {
			opt := m.IsEdns0()
			opt.Option = append(opt.Option, a.opt)
		}
	}
	raw, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// slowReply is the reply of the slow path, the reference.
func slowReply(s *Server, raw []byte) (reply []byte, done bool) {
	_, reply, done = s.respondLocal(raw, false, nil)
	return reply, done
}

// cachedReply answers raw as serveUDP does, and reports whether the reply
// came from the cache (it is then in buf).
func cachedReply(s *Server, raw, buf []byte) (reply []byte, fromCache, done bool) {
	_, reply, done = s.respondLocal(raw, false, buf)
	return reply, len(reply) > 0 && &reply[0] == &buf[0], done
}

// sameReply fails t unless got is want, byte for byte.
func sameReply(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	g, w := new(dns.Msg), new(dns.Msg)
	gerr, werr := g.Unpack(got), w.Unpack(want)
	t.Errorf("reply differs from the slow path's:\ngot (%d bytes, %v):\n%v\nwant (%d bytes, %v):\n%v", len(got), gerr, g, len(want), werr, w)
}

// TestCacheMatchesSlowPath fills the cache with one query, asks another
// and checks that the reply is the slow path's byte for byte, and whether
// it came from the cache.
func TestCacheMatchesSlowPath(t *testing.T) {
	cookie := &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}
	subnet := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: netip.MustParseAddr("192.0.2.0").AsSlice()}
	v6ptr := "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.d.f.ip6.arpa."
	tests := []struct {
		name      string
		zone      int // nodes in the service "big"
		fill, ask ask
		cached    bool // the reply to ask comes from the cache
		keptThen  bool // it does when ask is asked again
	}{
		{"node A", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA}, true, false},
		{"node A, mixed case", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA}, ask{name: "dB1.MESH.internal.", qtype: dns.TypeA}, true, false},
		{"node A, RD and CD", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, rd: true}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, cd: true}, true, false},
		{"node AAAA", 0, ask{name: "a.mesh.internal.", qtype: dns.TypeAAAA}, ask{name: "A.mesh.internal.", qtype: dns.TypeAAAA}, true, false},
		{"node ANY", 0, ask{name: "a.mesh.internal.", qtype: dns.TypeANY}, ask{name: "a.mesh.internal.", qtype: dns.TypeANY}, true, false},
		{"service A", 0, ask{name: "postgres.mesh.internal.", qtype: dns.TypeA}, ask{name: "Postgres.Mesh.Internal.", qtype: dns.TypeA}, true, false},
		{"SRV", 0, ask{name: "_postgres._tcp.mesh.internal.", qtype: dns.TypeSRV}, ask{name: "_POSTGRES._TCP.mesh.internal.", qtype: dns.TypeSRV}, true, false},
		{"PTR v4", 0, ask{name: "3.0.100.10.in-addr.arpa.", qtype: dns.TypePTR}, ask{name: "3.0.100.10.IN-ADDR.ARPA.", qtype: dns.TypePTR}, true, false},
		{"PTR v6", 0, ask{name: v6ptr, qtype: dns.TypePTR}, ask{name: strings.ToUpper(v6ptr), qtype: dns.TypePTR}, true, false},
		{"SOA", 0, ask{name: "mesh.internal.", qtype: dns.TypeSOA}, ask{name: "mesh.internal.", qtype: dns.TypeSOA}, true, false},
		{"NS", 0, ask{name: "mesh.internal.", qtype: dns.TypeNS}, ask{name: "MESH.internal.", qtype: dns.TypeNS}, true, false},
		{"NODATA", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeAAAA}, ask{name: "db1.mesh.internal.", qtype: dns.TypeAAAA}, true, false},
		{"NODATA, empty non-terminal", 0, ask{name: "_tcp.mesh.internal.", qtype: dns.TypeSRV}, ask{name: "_tcp.mesh.internal.", qtype: dns.TypeSRV}, true, false},
		{"NXDOMAIN: not kept", 0, ask{name: "nope.mesh.internal.", qtype: dns.TypeA}, ask{name: "nope.mesh.internal.", qtype: dns.TypeA}, false, false},
		{"class CH: slow path", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, class: dns.ClassCHAOS}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, class: dns.ClassCHAOS}, false, false},
		{"EDNS", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 4096}, true, false},
		{"EDNS with DO", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232, do: true}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 512, do: true}, true, false},
		{"EDNS, not DO: another reply", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232, do: true}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232}, false, true},
		{"no EDNS: another reply", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA}, false, true},
		{"EDNS with a cookie", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232, opt: cookie}, true, false},
		{"EDNS with client subnet: slow path", 0, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232, opt: subnet}, ask{name: "db1.mesh.internal.", qtype: dns.TypeA, edns: 1232, opt: subnet}, false, false},
		{"40 instances, 4096", 40, ask{name: "big.mesh.internal.", qtype: dns.TypeA, edns: 4096}, ask{name: "big.mesh.internal.", qtype: dns.TypeA, edns: 4096}, true, false},
		{"40 instances, 1232: compressed", 40, ask{name: "big.mesh.internal.", qtype: dns.TypeA, edns: 4096}, ask{name: "big.mesh.internal.", qtype: dns.TypeA, edns: 1232}, false, false},
		{"40 instances, no EDNS: truncated", 40, ask{name: "big.mesh.internal.", qtype: dns.TypeA}, ask{name: "Big.mesh.internal.", qtype: dns.TypeA}, false, false},
		{"100 instances, no EDNS: truncated", 100, ask{name: "big.mesh.internal.", qtype: dns.TypeA}, ask{name: "big.mesh.internal.", qtype: dns.TypeA}, false, false},
		{"100 instances, 4096: too many to keep", 100, ask{name: "big.mesh.internal.", qtype: dns.TypeA, edns: 4096}, ask{name: "big.mesh.internal.", qtype: dns.TypeA, edns: 4096}, false, false},
		{"100 instances, SRV: truncated", 100, ask{name: "_big._tcp.mesh.internal.", qtype: dns.TypeSRV, edns: 1232}, ask{name: "_big._tcp.mesh.internal.", qtype: dns.TypeSRV, edns: 1232}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Health: &downNodes{}}, testZone(t, nodes(tt.zone)...))
			buf := make([]byte, maxUDPSize)
			raw := tt.fill.pack(t)
			want, _ := slowReply(s, raw)
			got, _, _ := cachedReply(s, raw, buf)
			sameReply(t, got, want) // the first: the slow path's, and kept

			raw = tt.ask.pack(t)
			want, _ = slowReply(s, raw)
			got, fromCache, _ := cachedReply(s, raw, buf)
			sameReply(t, got, want)
			if fromCache != tt.cached {
				t.Errorf("reply from the cache: got %v, want %v", fromCache, tt.cached)
			}
			// Asked again: kept, unless it cannot be.
			got, fromCache, _ = cachedReply(s, raw, buf)
			sameReply(t, got, want)
			if fromCache != (tt.cached || tt.keptThen) {
				t.Errorf("asked again, reply from the cache: got %v, want %v", fromCache, tt.cached || tt.keptThen)
			}
		})
	}
}

// TestCacheOutsideZone: a name outside the zone is forwarded, not kept.
func TestCacheOutsideZone(t *testing.T) {
	s := New(Config{}, testZone(t))
	buf := make([]byte, maxUDPSize)
	raw := ask{name: "www.example.org.", qtype: dns.TypeA}.pack(t)
	for range 2 {
		if _, _, done := cachedReply(s, raw, buf); done {
			t.Fatal("a name outside the zone was answered locally, want forwarded")
		}
	}
	if n := len(s.zone.Load().cache.replies); n != 0 {
		t.Errorf("got %d replies kept, want 0", n)
	}
}

// answerOf returns the answer section of reply, in short form.
func answerOf(t *testing.T, reply []byte) string {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.SRV:
			out = append(out, rr.Target)
		}
	}
	return strings.Join(out, " ")
}

// TestCacheHealth: when a node's reachability changes, the next reply
// from the cache hands out the instances the slow path does.
func TestCacheHealth(t *testing.T) {
	h := &downNodes{}
	s := New(Config{Health: h}, testZone(t))
	buf := make([]byte, maxUDPSize)
	tests := []struct {
		down   []string
		a, srv string
	}{
		{nil, "10.100.0.2 10.100.0.3", "db1.mesh.internal. db2.mesh.internal."},
		{[]string{"db1"}, "10.100.0.3", "db2.mesh.internal."},
		{[]string{"db2"}, "10.100.0.2", "db1.mesh.internal."},
		{[]string{"db1", "db2"}, "10.100.0.2 10.100.0.3", "db1.mesh.internal. db2.mesh.internal."}, // none up: all
		{nil, "10.100.0.2 10.100.0.3", "db1.mesh.internal. db2.mesh.internal."},
		{[]string{"db1"}, "10.100.0.3", "db2.mesh.internal."},
	}
	for i, tt := range tests {
		h.set(tt.down...)
		for _, q := range []struct {
			ask  ask
			want string
		}{
			{ask{name: "postgres.mesh.internal.", qtype: dns.TypeA}, tt.a},
			{ask{name: "_postgres._tcp.mesh.internal.", qtype: dns.TypeSRV}, tt.srv},
		} {
			raw := q.ask.pack(t)
			want, _ := slowReply(s, raw)
			for try := range 2 {
				got, fromCache, _ := cachedReply(s, raw, buf)
				sameReply(t, got, want)
				if a := answerOf(t, got); a != q.want {
					t.Errorf("step %d, %s: got answer %q, want %q", i, q.ask.name, a, q.want)
				}
				// A state seen before (steps 4 and 5) is kept already.
				if wantCached := try == 1 || i >= 4; fromCache != wantCached {
					t.Errorf("step %d, %s, try %d: reply from the cache %v, want %v", i, q.ask.name, try, fromCache, wantCached)
				}
			}
		}
	}
}

// flapping is a Health on which db1 is down every other time it is asked.
type flapping struct{ asked int }

func (f *flapping) Reachable(node string) bool {
	if node != "db1" {
		return true
	}
	f.asked++
	return f.asked%2 == 1
}

// TestCacheHealthRecord: a reply kept is built from the reachability its
// key records, even when the Health changes its mind while it is built.
func TestCacheHealthRecord(t *testing.T) {
	h := &flapping{}
	s := New(Config{Health: h}, testZone(t))
	buf := make([]byte, maxUDPSize)
	raw := ask{name: "postgres.mesh.internal.", qtype: dns.TypeA}.pack(t)
	for i := range 6 {
		want := "10.100.0.2 10.100.0.3"
		if i%2 == 1 {
			want = "10.100.0.3"
		}
		got, _, _ := cachedReply(s, raw, buf)
		if a := answerOf(t, got); a != want {
			t.Errorf("query %d: got %q, want %q", i, a, want)
		}
	}
}

// TestCacheSwap: a reload's zone answers the next query.
func TestCacheSwap(t *testing.T) {
	s := New(Config{}, testZone(t))
	buf := make([]byte, maxUDPSize)
	raw := ask{name: "mesh.internal.", qtype: dns.TypeSOA}.pack(t)
	before, _, _ := cachedReply(s, raw, buf)
	before = bytes.Clone(before)
	if _, fromCache, _ := cachedReply(s, raw, buf); !fromCache {
		t.Fatal("SOA not kept")
	}
	s.Swap(testZone(t, dnszone.Node{Name: "e", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.5")}}))
	want, _ := slowReply(s, raw)
	got, _, _ := cachedReply(s, raw, buf)
	sameReply(t, got, want)
	if bytes.Equal(got, before) {
		t.Error("after Swap: got the old zone's SOA")
	}
}

// TestCacheStats: a server answering from the cache counts what one on
// the slow path does.
func TestCacheStats(t *testing.T) {
	fast, slow := New(Config{}, testZone(t)), New(Config{}, testZone(t))
	buf := make([]byte, maxUDPSize)
	for _, a := range []ask{
		{name: "db1.mesh.internal.", qtype: dns.TypeA},
		{name: "db1.mesh.internal.", qtype: dns.TypeAAAA},
		{name: "nope.mesh.internal.", qtype: dns.TypeA},
		{name: "_postgres._tcp.mesh.internal.", qtype: dns.TypeSRV, edns: 1232},
		{name: "mesh.internal.", qtype: dns.TypeMX},
	} {
		raw := a.pack(t)
		for range 3 {
			cachedReply(fast, raw, buf)
			slowReply(slow, raw)
		}
	}
	f, s := fast.Stats(), slow.Stats()
	for i := range f.Rcodes {
		if f.Rcodes[i].Load() != s.Rcodes[i].Load() {
			t.Errorf("Rcodes[%s]: got %d, want %d", dns.RcodeToString[i], f.Rcodes[i].Load(), s.Rcodes[i].Load())
		}
	}
	for i := range f.Types {
		if f.Types[i].Load() != s.Types[i].Load() {
			t.Errorf("Types[%s]: got %d, want %d", TypeName(i), f.Types[i].Load(), s.Types[i].Load())
		}
	}
	if latencyCount(&f.ZoneLatency) != latencyCount(&s.ZoneLatency) {
		t.Errorf("zone latencies: got %d, want %d", latencyCount(&f.ZoneLatency), latencyCount(&s.ZoneLatency))
	}
	if f.Malformed.Load() != s.Malformed.Load() || f.Truncated.Load() != s.Truncated.Load() {
		t.Errorf("Malformed, Truncated: got %d, %d, want %d, %d", f.Malformed.Load(), f.Truncated.Load(), s.Malformed.Load(), s.Truncated.Load())
	}
}

// TestCacheBound: random names keep nothing, and random types on a name
// of the zone no more than maxCacheBytes.
func TestCacheBound(t *testing.T) {
	s := New(Config{}, testZone(t))
	buf := make([]byte, maxUDPSize)
	c := &s.zone.Load().cache
	for range 1000 {
		cachedReply(s, ask{name: fmt.Sprintf("x%d.mesh.internal.", rand.Uint64()), qtype: dns.TypeA}.pack(t), buf)
	}
	if n := len(c.replies); n != 0 {
		t.Errorf("after random names: %d replies kept, want 0", n)
	}
	most, emptied := 0, false
	for qtype := range uint16(65535) {
		before := len(c.replies)
		cachedReply(s, ask{name: "db1.mesh.internal.", qtype: qtype + 1}.pack(t), buf)
		if c.bytes > maxCacheBytes {
			t.Fatalf("%d bytes kept, more than %d", c.bytes, maxCacheBytes)
		}
		most = max(most, len(c.replies))
		emptied = emptied || len(c.replies) < before
	}
	if most < 10000 || !emptied {
		t.Errorf("got at most %d replies kept, emptied %v, want over 10,000 and emptied when full", most, emptied)
	}
}

// zoneQueries are queries answered from the cache once it holds them.
var zoneQueries = []ask{
	{name: "db1.mesh.internal.", qtype: dns.TypeA},
	{name: "postgres.mesh.internal.", qtype: dns.TypeA},
	{name: "_postgres._tcp.mesh.internal.", qtype: dns.TypeSRV, edns: 1232},
	{name: "Db2.Mesh.Internal.", qtype: dns.TypeA, edns: 1232, do: true},
	{name: "3.0.100.10.in-addr.arpa.", qtype: dns.TypePTR},
	{name: "db1.mesh.internal.", qtype: dns.TypeAAAA},
}

func TestRespondLocalNoAllocs(t *testing.T) {
	s := New(Config{Health: &downNodes{}}, testZone(t))
	buf := make([]byte, maxUDPSize)
	for _, a := range zoneQueries {
		raw := a.pack(t)
		cachedReply(s, raw, buf)
		if n := testing.AllocsPerRun(100, func() { s.respondLocal(raw, false, buf) }); n != 0 {
			t.Errorf("%s %s: got %v allocations per query, want 0", a.name, dns.TypeToString[a.qtype], n)
		}
	}
}

// BenchmarkRespondLocal measures a reply from the cache: the queries of
// zoneQueries in turn, with a Health.
func BenchmarkRespondLocal(b *testing.B) {
	s := New(Config{Health: &downNodes{}}, testZone(b))
	buf := make([]byte, maxUDPSize)
	var raws [][]byte
	for _, a := range zoneQueries {
		raws = append(raws, a.pack(b))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, reply, _ := s.respondLocal(raws[i%len(raws)], false, buf); reply == nil {
			b.Fatal("no reply")
		}
	}
}
