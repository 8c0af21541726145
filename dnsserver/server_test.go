package dnsserver

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/overlay-node/overlay-node/dnszone"
)

// testZone is three nodes, one dual-stack, and a service on two of them.
func testZone(t testing.TB, extra ...dnszone.Node) *dnszone.Zone {
	t.Helper()
	in := dnszone.Input{
		Domain: "mesh.internal",
		Self:   "a",
		Nodes: append([]dnszone.Node{
			{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.1"), netip.MustParseAddr("fd00:100::1")}},
			{Name: "db1", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.2")}},
			{Name: "db2", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.3")}},
		}, extra...),
		Services: []dnszone.Service{{Name: "postgres", Nodes: []string{"db1", "db2"}, Port: 5432, Protocol: "tcp"}},
	}
	if len(extra) > 0 {
		big := dnszone.Service{Name: "big", Port: 80, Protocol: "tcp"}
		for _, n := range extra {
			big.Nodes = append(big.Nodes, n.Name)
		}
		in.Services = append(in.Services, big)
	}
	z, err := dnszone.New(in)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// start runs a server for z on a free port of 127.0.0.1 until the test ends.
func start(t testing.TB, z *dnszone.Zone, upstreams ...netip.AddrPort) (*Server, netip.AddrPort) {
	t.Helper()
	s := New(Config{Listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}, Upstreams: upstreams}, z)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, s.Addrs()[0]
}

// digReply is what dig printed, in short form.
type digReply struct {
	status, flags                 string
	answer, authority, additional string
}

// dig runs dig against addr and parses its output.
func dig(t *testing.T, addr netip.AddrPort, args ...string) digReply {
	t.Helper()
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed (make deps installs it)")
	}
	all := append([]string{"@" + addr.Addr().String(), "-p", fmt.Sprint(addr.Port()), "+time=2", "+tries=1", "+noall", "+comments", "+answer", "+authority", "+additional"}, args...)
	out, err := exec.Command("dig", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", args, err, out)
	}
	var r digReply
	sections := map[string]*[]string{}
	var ans, auth, add []string
	sections["ANSWER"], sections["AUTHORITY"], sections["ADDITIONAL"] = &ans, &auth, &add
	var cur *[]string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(line, "->>HEADER<<-"):
			_, st, _ := strings.Cut(line, "status: ")
			r.status, _, _ = strings.Cut(st, ",")
		case strings.HasPrefix(line, ";; flags:"):
			f, _, _ := strings.Cut(strings.TrimPrefix(line, ";; flags: "), ";")
			r.flags = f
		case strings.HasPrefix(line, ";; ") && strings.HasSuffix(line, " SECTION:"):
			cur = sections[strings.TrimSuffix(strings.TrimPrefix(line, ";; "), " SECTION:")]
		case line == "" || strings.HasPrefix(line, ";"):
		case cur != nil:
			rr, err := dns.NewRR(line)
			if err != nil {
				t.Fatalf("dig printed a record that does not parse: %q: %v", line, err)
			}
			f := strings.Fields(rr.String())
			*cur = append(*cur, strings.Join(append([]string{f[0], f[3]}, f[4:]...), " "))
		}
	}
	for _, s := range []*[]string{&ans, &auth, &add} {
		slices.Sort(*s)
	}
	r.answer, r.authority, r.additional = strings.Join(ans, "; "), strings.Join(auth, "; "), strings.Join(add, "; ")
	t.Logf("dig %s: %s [%s] answer=%q authority=%q additional=%q", strings.Join(args, " "), r.status, r.flags, r.answer, r.authority, r.additional)
	return r
}

func TestDig(t *testing.T) {
	z := testZone(t)
	_, addr := start(t, z)
	soa := fmt.Sprintf("mesh.internal. SOA a.mesh.internal. hostmaster.mesh.internal. %d 3600 600 86400 10", z.Serial())
	tests := []struct {
		args                          []string
		status                        string
		answer, authority, additional string
	}{
		{[]string{"db1.mesh.internal", "A"}, "NOERROR", "db1.mesh.internal. A 10.100.0.2", "", ""},
		{[]string{"a.mesh.internal", "AAAA"}, "NOERROR", "a.mesh.internal. AAAA fd00:100::1", "", ""},
		{[]string{"postgres.mesh.internal", "A"}, "NOERROR", "postgres.mesh.internal. A 10.100.0.2; postgres.mesh.internal. A 10.100.0.3", "", ""},
		{[]string{"_postgres._tcp.mesh.internal", "SRV"}, "NOERROR",
			"_postgres._tcp.mesh.internal. SRV 0 10 5432 db1.mesh.internal.; _postgres._tcp.mesh.internal. SRV 0 10 5432 db2.mesh.internal.", "",
			"db1.mesh.internal. A 10.100.0.2; db2.mesh.internal. A 10.100.0.3"},
		{[]string{"-x", "10.100.0.3"}, "NOERROR", "3.0.100.10.in-addr.arpa. PTR db2.mesh.internal.", "", ""},
		{[]string{"-x", "fd00:100::1"}, "NOERROR", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.d.f.ip6.arpa. PTR a.mesh.internal.", "", ""},
		{[]string{"mesh.internal", "SOA"}, "NOERROR", soa, "", ""},
		{[]string{"mesh.internal", "NS"}, "NOERROR", "mesh.internal. NS a.mesh.internal.", "", "a.mesh.internal. A 10.100.0.1; a.mesh.internal. AAAA fd00:100::1"},
		{[]string{"nope.mesh.internal", "A"}, "NXDOMAIN", "", soa, ""},
		{[]string{"db1.mesh.internal", "AAAA"}, "NOERROR", "", soa, ""},
		{[]string{"_tcp.mesh.internal", "SRV"}, "NOERROR", "", soa, ""},
		{[]string{"DB2.Mesh.INTERNAL", "A"}, "NOERROR", "db2.mesh.internal. A 10.100.0.3", "", ""},
		{[]string{"+noedns", "db1.mesh.internal", "A"}, "NOERROR", "db1.mesh.internal. A 10.100.0.2", "", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := dig(t, addr, tt.args...)
			if r.status != tt.status {
				t.Errorf("got status %s, want %s", r.status, tt.status)
			}
			if !strings.Contains(r.flags, "aa") {
				t.Errorf("got flags %q, want aa (authoritative)", r.flags)
			}
			if r.answer != tt.answer {
				t.Errorf("got answer %q, want %q", r.answer, tt.answer)
			}
			if r.authority != tt.authority {
				t.Errorf("got authority %q, want %q", r.authority, tt.authority)
			}
			if r.additional != tt.additional {
				t.Errorf("got additional %q, want %q", r.additional, tt.additional)
			}
		})
	}
}

// TestTruncation checks TC over UDP for an answer bigger than the client's
// size, and that dig's retry over TCP gets all of it.
func TestTruncation(t *testing.T) {
	var many []dnszone.Node
	for i := range 100 {
		many = append(many, dnszone.Node{Name: fmt.Sprintf("n%d", i), Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 101, byte(i / 256), byte(i%256 + 1)})}})
	}
	s, addr := start(t, testZone(t, many...))

	for _, size := range []string{"+noedns", "+bufsize=1232"} {
		r := dig(t, addr, "+ignore", size, "big.mesh.internal", "A")
		if !strings.Contains(r.flags, "tc") {
			t.Errorf("%s: got flags %q over UDP, want tc", size, r.flags)
		}
		if n := strings.Count(r.answer, " A "); n >= 100 {
			t.Errorf("%s: got %d records in a truncated answer, want fewer than 100", size, n)
		}
	}
	if s.Stats().Truncated.Load() < 2 {
		t.Errorf("Truncated = %d, want at least 2", s.Stats().Truncated.Load())
	}
	r := dig(t, addr, "+noedns", "big.mesh.internal", "A") // dig retries on TCP
	if strings.Contains(r.flags, "tc") {
		t.Errorf("got flags %q after the TCP retry, want no tc", r.flags)
	}
	if n := strings.Count(r.answer, " A "); n != 100 {
		t.Errorf("got %d records over TCP, want 100", n)
	}
	r = dig(t, addr, "+tcp", "_big._tcp.mesh.internal", "SRV")
	if n, m := strings.Count(r.answer, " SRV "), strings.Count(r.additional, " A "); n != 100 || m != 100 {
		t.Errorf("got %d SRV and %d additional A over TCP, want 100 and 100", n, m)
	}
}

// upstream runs a miekg/dns server on 127.0.0.1 that answers every A query
// with 192.0.2.1.
func upstream(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.RecursionAvailable = true
		if req.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR(req.Question[0].Name + " 300 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m) //nolint:errcheck
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe() //nolint:errcheck
	<-started
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestForward(t *testing.T) {
	up := upstream(t)
	// A dead upstream first: the server goes on to the next.
	dead := deadAddr(t)
	s, addr := start(t, testZone(t), dead, up)
	r := dig(t, addr, "www.example.org", "A")
	if r.status != "NOERROR" || r.answer != "www.example.org. A 192.0.2.1" {
		t.Errorf("got %s %q, want NOERROR and the upstream's answer", r.status, r.answer)
	}
	if strings.Contains(r.flags, "aa") {
		t.Errorf("got flags %q for a forwarded answer, want no aa", r.flags)
	}
	if got := s.Stats().Forwards.Load(); got != 1 {
		t.Errorf("Forwards = %d, want 1", got)
	}
	// Names in the zone are never forwarded.
	dig(t, addr, "db1.mesh.internal", "A")
	if got := s.Stats().Forwards.Load(); got != 1 {
		t.Errorf("Forwards = %d after a zone query, want still 1", got)
	}
}

// deadAddr returns a UDP address where nothing answers.
func deadAddr(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	return ap
}

func TestForwardFailure(t *testing.T) {
	s, addr := start(t, testZone(t), deadAddr(t))
	r := dig(t, addr, "www.example.org", "A")
	if r.status != "SERVFAIL" {
		t.Errorf("got status %s with a dead upstream, want SERVFAIL", r.status)
	}
	if got := s.Stats().ForwardFailures.Load(); got != 1 {
		t.Errorf("ForwardFailures = %d, want 1", got)
	}
}

func TestRefusedWithoutUpstream(t *testing.T) {
	s, addr := start(t, testZone(t))
	r := dig(t, addr, "www.example.org", "A")
	if r.status != "REFUSED" {
		t.Errorf("got status %s, want REFUSED", r.status)
	}
	if got := s.Stats().Rcodes[dns.RcodeRefused].Load(); got != 1 {
		t.Errorf("Rcodes[REFUSED] = %d, want 1", got)
	}
}

func TestSwap(t *testing.T) {
	s, addr := start(t, testZone(t))
	before := dig(t, addr, "mesh.internal", "SOA")
	s.Swap(testZone(t, dnszone.Node{Name: "e", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.5")}}))
	if r := dig(t, addr, "e.mesh.internal", "A"); r.answer != "e.mesh.internal. A 10.100.0.5" {
		t.Errorf("after Swap: got answer %q, want the new node's address", r.answer)
	}
	if after := dig(t, addr, "mesh.internal", "SOA"); after.answer == before.answer {
		t.Errorf("after Swap: SOA unchanged %q, want a new serial", after.answer)
	}
}

// TestMalformed sends bad queries over UDP: each is counted, and answered
// FORMERR or dropped.
func TestMalformed(t *testing.T) {
	s, addr := start(t, testZone(t))
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good, _ := new(dns.Msg).SetQuestion("db1.mesh.internal.", dns.TypeA).Pack()
	twoQuestions := new(dns.Msg)
	twoQuestions.Question = []dns.Question{{Name: "a.", Qtype: 1, Qclass: 1}, {Name: "b.", Qtype: 1, Qclass: 1}}
	two, _ := twoQuestions.Pack()
	response := slices.Clone(good)
	response[2] |= 0x80
	tests := []struct {
		name  string
		query []byte
		want  int // rcode, or -1 for no reply
	}{
		{"short", []byte{1, 2, 3}, -1},
		{"response", response, -1},
		{"cut", good[:len(good)-3], dns.RcodeFormatError},
		{"two questions", two, dns.RcodeFormatError},
		{"longer than a UDP query may be", append(slices.Clone(good), make([]byte, maxUDPQuery)...), -1},
	}
	buf := make([]byte, 2048)
	for i, tt := range tests {
		if _, err := c.Write(tt.query); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond)) //nolint:errcheck
		n, err := c.Read(buf)
		switch {
		case tt.want < 0 && err == nil:
			t.Errorf("%s: got a reply of %d bytes, want none", tt.name, n)
		case tt.want >= 0 && err != nil:
			t.Errorf("%s: got no reply (%v), want rcode %s", tt.name, err, dns.RcodeToString[tt.want])
		case tt.want >= 0:
			m := new(dns.Msg)
			if err := m.Unpack(buf[:n]); err != nil || m.Rcode != tt.want {
				t.Errorf("%s: got reply %v (err %v), want rcode %s", tt.name, m, err, dns.RcodeToString[tt.want])
			}
		}
		if got := s.Stats().Malformed.Load(); got != uint64(i+1) {
			t.Errorf("%s: Malformed = %d, want %d", tt.name, got, i+1)
		}
	}
}

func TestDefaultUpstreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver 10.100.0.1\nnameserver fe80::1%eth0\nnameserver junk\nnameserver 192.0.2.53\nnameserver 2001:db8::53 \noptions edns0\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := DefaultUpstreams(path, []netip.Addr{netip.MustParseAddr("10.100.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53"), netip.MustParseAddrPort("[2001:db8::53]:53")}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := DefaultUpstreams(filepath.Join(t.TempDir(), "none"), nil); err == nil {
		t.Error("missing file: got no error")
	}
}

// FuzzRespond feeds arbitrary bytes to the query handler: it never panics,
// and a query that does not parse is answered FORMERR or dropped. It also
// checks the reply cache against the slow path, its reference: a query
// that wireQuery reads, miekg/dns reads the same, and a reply from the
// cache is the slow path's, byte for byte. The cache lives across inputs,
// so that replies kept for one query are given to others.
func FuzzRespond(f *testing.F) {
	for _, q := range []*dns.Msg{
		new(dns.Msg).SetQuestion("db1.mesh.internal.", dns.TypeA),
		new(dns.Msg).SetQuestion("DB1.mesh.Internal.", dns.TypeA),
		new(dns.Msg).SetQuestion("postgres.mesh.internal.", dns.TypeA).SetEdns0(1232, false),
		new(dns.Msg).SetQuestion("_postgres._tcp.mesh.internal.", dns.TypeSRV),
		new(dns.Msg).SetQuestion("www.example.org.", dns.TypeAAAA),
		new(dns.Msg).SetQuestion("3.0.100.10.in-addr.arpa.", dns.TypePTR).SetEdns0(4096, true),
		new(dns.Msg).SetQuestion("mesh.internal.", dns.TypeSOA).SetEdns0(512, true),
	} {
		b, _ := q.Pack()
		f.Add(b)
	}
	f.Add(ask{name: "db2.mesh.internal.", qtype: dns.TypeA, edns: 1232, opt: &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"}}.pack(f))
	s := New(Config{}, testZone(f))
	buf := make([]byte, maxUDPSize)
	f.Fuzz(func(t *testing.T, raw []byte) {
		reply := s.respond(context.Background(), raw, false)
		var wq wireQuery
		if wq.parse(raw) {
			m := new(dns.Msg)
			if err := m.Unpack(raw); err != nil {
				t.Fatalf("wireQuery reads a query miekg/dns does not: %v", err)
			}
			q, opt := m.Question[0], m.IsEdns0()
			if string(wq.name()) != strings.ToLower(q.Name) || wq.qtype != q.Qtype || q.Qclass != dns.ClassINET || wq.edns != (opt != nil) ||
				opt != nil && (wq.do != opt.Do() || wq.udpSize != opt.UDPSize()) || len(m.Question) != 1 || m.Opcode != dns.OpcodeQuery {
				t.Fatalf("wireQuery read %q %d edns %v do %v size %d, miekg/dns %v", wq.name(), wq.qtype, wq.edns, wq.do, wq.udpSize, m)
			}
		}
		for range 2 { // the first may fill the cache
			got, fromCache, _ := cachedReply(s, raw, buf)
			if fromCache && !bytes.Equal(got, reply) {
				t.Fatalf("reply from the cache differs from the slow path's:\n%x\n%x", got, reply)
			}
		}
		if reply == nil {
			return
		}
		m := new(dns.Msg)
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if len(reply) > maxUDPSize {
			t.Fatalf("UDP reply of %d bytes, more than %d", len(reply), maxUDPSize)
		}
		if !m.Response || m.Id != uint16(raw[0])<<8|uint16(raw[1]) {
			t.Fatalf("reply is not a response to the query's ID: %v", m)
		}
		if err := new(dns.Msg).Unpack(raw); err != nil && m.Rcode != dns.RcodeFormatError {
			t.Fatalf("query does not parse (%v), got rcode %s, want FORMERR", err, dns.RcodeToString[m.Rcode])
		}
	})
}

// Listen and Unlisten change the served addresses of a running server;
// SetUpstreams changes where it forwards.
func TestListenUnlistenSetUpstreams(t *testing.T) {
	s, first := start(t, testZone(t))
	second := netip.MustParseAddrPort("127.0.0.2:0")
	if err := s.Listen([]netip.AddrPort{second}); err != nil {
		t.Fatal(err)
	}
	addrs := s.Addrs()
	if len(addrs) != 2 || addrs[0] != first || addrs[1].Addr() != second.Addr() {
		t.Fatalf("Addrs() = %v, want %v and one on %v", addrs, first, second.Addr())
	}
	if r := dig(t, addrs[1], "db1.mesh.internal", "A"); r.answer != "db1.mesh.internal. A 10.100.0.2" {
		t.Errorf("on the second address: got %q", r.answer)
	}
	if err := s.Listen([]netip.AddrPort{second}); err == nil {
		t.Error("Listen of an address served already: got no error")
	}
	// A failing Listen serves none of its addresses.
	if err := s.Listen([]netip.AddrPort{netip.MustParseAddrPort("127.0.0.3:0"), first}); err == nil {
		t.Error("Listen on a bound port: got no error")
	}
	if got := s.Addrs(); len(got) != 2 {
		t.Errorf("after a failed Listen: Addrs() = %v, want the 2 from before", got)
	}

	s.SetUpstreams([]netip.AddrPort{upstream(t)})
	if r := dig(t, first, "www.example.org", "A"); r.status != "NOERROR" || r.answer != "www.example.org. A 192.0.2.1" {
		t.Errorf("after SetUpstreams: got %s %q, want the upstream's answer", r.status, r.answer)
	}

	s.Unlisten([]netip.AddrPort{first})
	if got := s.Addrs(); len(got) != 1 || got[0] != addrs[1] {
		t.Fatalf("after Unlisten: Addrs() = %v, want [%v]", got, addrs[1])
	}
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("db1.mesh.internal.", dns.TypeA), first.String()); err == nil {
		t.Error("a query to an address no longer served was answered")
	}
	s.Swap(nil) // no zone: every name is forwarded
	if r := dig(t, addrs[1], "db1.mesh.internal", "A"); r.answer != "db1.mesh.internal. A 192.0.2.1" || strings.Contains(r.flags, "aa") {
		t.Errorf("without a zone: got [%s] %q, want the upstream's answer", r.flags, r.answer)
	}
}

func latencyCount(l *Latency) uint64 {
	var n uint64
	for i := range l.Counts {
		n += l.Counts[i].Load()
	}
	return n
}

// Answers from the zone and forwarded ones are timed apart.
// TestBurst sends more queries than one batch takes, zone names and a
// forwarded one mixed, before reading any reply: each is answered once,
// with its own ID and answer.
func TestBurst(t *testing.T) {
	_, addr := start(t, testZone(t), upstream(t))
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 3*udpBatch + 1
	want := make(map[uint16]string) // ID: the answer's name
	for i := range n {
		name := "db1.mesh.internal."
		if i == n/2 {
			name = "www.example.org."
		}
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Id = uint16(1000 + i)
		raw, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(raw); err != nil {
			t.Fatal(err)
		}
		want[m.Id] = name
	}
	buf := make([]byte, 2048)
	for range n {
		c.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%d replies missing: %v", len(want), err)
		}
		m := new(dns.Msg)
		if err := m.Unpack(buf[:k]); err != nil {
			t.Fatal(err)
		}
		name, ok := want[m.Id]
		if !ok || len(m.Answer) != 1 || m.Answer[0].Header().Name != name {
			t.Fatalf("reply %d (%v) does not answer a query still waiting for one", m.Id, m.Answer)
		}
		delete(want, m.Id)
	}
}

func TestLatency(t *testing.T) {
	s, addr := start(t, testZone(t), upstream(t))
	dig(t, addr, "db1.mesh.internal", "A")
	dig(t, addr, "nosuch.mesh.internal", "A")
	dig(t, addr, "www.example.org", "A")
	st := s.Stats()
	if z, f := latencyCount(&st.ZoneLatency), latencyCount(&st.ForwardLatency); z != 2 || f != 1 {
		t.Errorf("got %d zone and %d forward latencies, want 2 and 1", z, f)
	}
	if st.ZoneLatency.Sum.Load() <= 0 || st.ForwardLatency.Sum.Load() <= 0 {
		t.Errorf("latency sums: zone %d ns, forward %d ns, want both > 0", st.ZoneLatency.Sum.Load(), st.ForwardLatency.Sum.Load())
	}

	var l Latency
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 51 * time.Microsecond, time.Millisecond, time.Hour} {
		l.observe(d)
	}
	want := map[int]uint64{0: 2, 1: 1, 4: 1, len(LatencyBounds): 1}
	for i := range l.Counts {
		if got := l.Counts[i].Load(); got != want[i] {
			t.Errorf("bucket %d: got %d, want %d", i, got, want[i])
		}
	}
}
