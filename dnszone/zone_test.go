package dnszone

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// testInput is a mesh of three nodes, one dual-stack, and two services.
func testInput() Input {
	return Input{
		Domain: "Mesh.Internal",
		Self:   "a",
		Nodes: []Node{
			{Name: "a", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.1"), netip.MustParseAddr("fd00:100::1")}},
			{Name: "db1", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.2")}},
			{Name: "db2", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.3")}},
		},
		Services: []Service{
			{Name: "postgres", Nodes: []string{"db1", "db2"}, Port: 5432, Protocol: "tcp"},
			{Name: "dns", Nodes: []string{"a"}, Port: 53, Protocol: "udp"},
		},
	}
}

// down is a Health with the listed nodes unreachable.
type down []string

func (d down) Reachable(node string) bool { return !slices.Contains(d, node) }

// short renders records as "name type data" lines, sorted, for comparison.
func short(rrs []dns.RR) string {
	var lines []string
	for _, rr := range rrs {
		f := strings.Fields(rr.String()) // name ttl class type data...
		lines = append(lines, strings.Join(append([]string{f[0], f[3]}, f[4:]...), " "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "; ")
}

func TestAnswer(t *testing.T) {
	z, err := New(testInput())
	if err != nil {
		t.Fatal(err)
	}
	soa := fmt.Sprintf("mesh.internal. SOA a.mesh.internal. hostmaster.mesh.internal. %d 3600 600 86400 10", z.Serial())
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		health Health
		rcode  int
		answer string
		ns     string
		extra  string
	}{
		{"node A", "db1.mesh.internal.", dns.TypeA, nil, dns.RcodeSuccess, "db1.mesh.internal. A 10.100.0.2", "", ""},
		{"node AAAA", "a.mesh.internal.", dns.TypeAAAA, nil, dns.RcodeSuccess, "a.mesh.internal. AAAA fd00:100::1", "", ""},
		{"node ANY", "a.mesh.internal.", dns.TypeANY, nil, dns.RcodeSuccess, "a.mesh.internal. A 10.100.0.1; a.mesh.internal. AAAA fd00:100::1", "", ""},
		{"node no AAAA: NODATA", "db1.mesh.internal.", dns.TypeAAAA, nil, dns.RcodeSuccess, "", soa, ""},
		{"node MX: NODATA", "db1.mesh.internal.", dns.TypeMX, nil, dns.RcodeSuccess, "", soa, ""},
		{"case-insensitive", "DB1.MeSh.InTeRnAl.", dns.TypeA, nil, dns.RcodeSuccess, "db1.mesh.internal. A 10.100.0.2", "", ""},
		{"service A", "postgres.mesh.internal.", dns.TypeA, nil, dns.RcodeSuccess,
			"postgres.mesh.internal. A 10.100.0.2; postgres.mesh.internal. A 10.100.0.3", "", ""},
		{"service A, one down", "postgres.mesh.internal.", dns.TypeA, down{"db1"}, dns.RcodeSuccess, "postgres.mesh.internal. A 10.100.0.3", "", ""},
		{"service A, all down", "postgres.mesh.internal.", dns.TypeA, down{"db1", "db2"}, dns.RcodeSuccess,
			"postgres.mesh.internal. A 10.100.0.2; postgres.mesh.internal. A 10.100.0.3", "", ""},
		{"service AAAA", "dns.mesh.internal.", dns.TypeAAAA, nil, dns.RcodeSuccess, "dns.mesh.internal. AAAA fd00:100::1", "", ""},
		{"service AAAA: NODATA", "postgres.mesh.internal.", dns.TypeAAAA, nil, dns.RcodeSuccess, "", soa, ""},
		{"SRV", "_postgres._tcp.mesh.internal.", dns.TypeSRV, nil, dns.RcodeSuccess,
			"_postgres._tcp.mesh.internal. SRV 0 10 5432 db1.mesh.internal.; _postgres._tcp.mesh.internal. SRV 0 10 5432 db2.mesh.internal.", "",
			"db1.mesh.internal. A 10.100.0.2; db2.mesh.internal. A 10.100.0.3"},
		{"SRV, one down", "_postgres._tcp.mesh.internal.", dns.TypeSRV, down{"db2"}, dns.RcodeSuccess,
			"_postgres._tcp.mesh.internal. SRV 0 10 5432 db1.mesh.internal.", "", "db1.mesh.internal. A 10.100.0.2"},
		{"SRV dual stack", "_dns._udp.mesh.internal.", dns.TypeSRV, nil, dns.RcodeSuccess,
			"_dns._udp.mesh.internal. SRV 0 10 53 a.mesh.internal.", "", "a.mesh.internal. A 10.100.0.1; a.mesh.internal. AAAA fd00:100::1"},
		{"SRV wrong protocol", "_postgres._udp.mesh.internal.", dns.TypeSRV, nil, dns.RcodeNameError, "", soa, ""},
		{"SRV name, type A: NODATA", "_postgres._tcp.mesh.internal.", dns.TypeA, nil, dns.RcodeSuccess, "", soa, ""},
		{"empty non-terminal", "_tcp.mesh.internal.", dns.TypeSRV, nil, dns.RcodeSuccess, "", soa, ""},
		{"empty non-terminal udp", "_UDP.mesh.internal.", dns.TypeA, nil, dns.RcodeSuccess, "", soa, ""},
		{"PTR v4", "2.0.100.10.in-addr.arpa.", dns.TypePTR, nil, dns.RcodeSuccess, "2.0.100.10.in-addr.arpa. PTR db1.mesh.internal.", "", ""},
		{"PTR v6", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.d.f.ip6.arpa.", dns.TypePTR, nil, dns.RcodeSuccess,
			"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.d.f.ip6.arpa. PTR a.mesh.internal.", "", ""},
		{"PTR name, type A: NODATA", "2.0.100.10.in-addr.arpa.", dns.TypeA, nil, dns.RcodeSuccess, "", soa, ""},
		{"SOA", "mesh.internal.", dns.TypeSOA, nil, dns.RcodeSuccess, soa, "", ""},
		{"NS", "mesh.internal.", dns.TypeNS, nil, dns.RcodeSuccess, "mesh.internal. NS a.mesh.internal.", "",
			"a.mesh.internal. A 10.100.0.1; a.mesh.internal. AAAA fd00:100::1"},
		{"apex A: NODATA", "mesh.internal.", dns.TypeA, nil, dns.RcodeSuccess, "", soa, ""},
		{"unknown name: NXDOMAIN", "nope.mesh.internal.", dns.TypeA, nil, dns.RcodeNameError, "", soa, ""},
		{"below a node: NXDOMAIN", "x.db1.mesh.internal.", dns.TypeA, nil, dns.RcodeNameError, "", soa, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, ok := z.Answer(tt.qname, tt.qtype, tt.health)
			if !ok {
				t.Fatalf("got not authoritative for %s, want an answer", tt.qname)
			}
			if r.Rcode != tt.rcode {
				t.Errorf("got rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			if got := short(r.Answer); got != tt.answer {
				t.Errorf("got answer %q, want %q", got, tt.answer)
			}
			if got := short(r.Ns); got != tt.ns {
				t.Errorf("got authority %q, want %q", got, tt.ns)
			}
			if got := short(r.Extra); got != tt.extra {
				t.Errorf("got additional %q, want %q", got, tt.extra)
			}
		})
	}
}

func TestOutsideZone(t *testing.T) {
	z, err := New(testInput())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"example.com.", "internal.", ".", "9.0.100.10.in-addr.arpa.", "0.100.10.in-addr.arpa.", "mesh.internal.evil."} {
		if _, ok := z.Answer(name, dns.TypeA, nil); ok {
			t.Errorf("%s: got an authoritative answer, want none (to forward)", name)
		}
		if z.Contains(name) {
			t.Errorf("Contains(%s) = true, want false", name)
		}
	}
	for _, name := range []string{"mesh.internal.", "X.MESH.internal.", "3.0.100.10.in-addr.arpa."} {
		if !z.Contains(name) {
			t.Errorf("Contains(%s) = false, want true", name)
		}
	}
}

func TestSerial(t *testing.T) {
	a, err := New(testInput())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(testInput())
	if err != nil {
		t.Fatal(err)
	}
	if a.Serial() != b.Serial() {
		t.Errorf("same content: got serials %d and %d, want equal", a.Serial(), b.Serial())
	}
	changes := map[string]func(*Input){
		"address": func(in *Input) { in.Nodes[1].Addresses[0] = netip.MustParseAddr("10.100.0.9") },
		"port":    func(in *Input) { in.Services[0].Port = 5433 },
		"members": func(in *Input) { in.Services[0].Nodes = in.Services[0].Nodes[:1] },
		"node":    func(in *Input) { in.Nodes = append(in.Nodes, Node{Name: "e"}) },
	}
	for name, change := range changes {
		in := testInput()
		change(&in)
		c, err := New(in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Serial() == a.Serial() {
			t.Errorf("%s changed: serial stayed %d", name, a.Serial())
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := map[string]func(*Input){
		"bad domain":        func(in *Input) { in.Domain = "a..b" },
		"self unknown":      func(in *Input) { in.Self = "zz" },
		"node twice":        func(in *Input) { in.Nodes = append(in.Nodes, Node{Name: "a"}) },
		"node not a label":  func(in *Input) { in.Nodes[1].Name = "x.y" },
		"address shared":    func(in *Input) { in.Nodes[2].Addresses = in.Nodes[1].Addresses },
		"service node":      func(in *Input) { in.Services[0].Nodes = []string{"zz"} },
		"service protocol":  func(in *Input) { in.Services[0].Protocol = "sctp" },
		"service like node": func(in *Input) { in.Services[0].Name = "db1" },
		"service twice":     func(in *Input) { in.Services[1].Name = "postgres"; in.Services[1].Protocol = "tcp" },
	}
	for name, change := range tests {
		in := testInput()
		change(&in)
		if _, err := New(in); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
}

// TestUp checks the record of reachability: its bits, and that an answer
// built from it is the one built from the Health it recorded.
func TestUp(t *testing.T) {
	in := testInput()
	big := Service{Name: "big", Port: 80, Protocol: "tcp"}
	for i := range MaxUp + 1 {
		n := Node{Name: fmt.Sprintf("n%d", i), Addresses: []netip.Addr{netip.AddrFrom4([4]byte{10, 101, 0, byte(i + 1)})}}
		in.Nodes = append(in.Nodes, n)
		big.Nodes = append(big.Nodes, n.Name)
	}
	in.Services = append(in.Services, big)
	z, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		qtype  uint16
		health Health
		bits   uint64
		ok     bool
	}{
		{"postgres.mesh.internal.", dns.TypeA, nil, 0b11, true},
		{"postgres.mesh.internal.", dns.TypeA, down{"db1"}, 0b10, true},
		{"postgres.mesh.internal.", dns.TypeANY, down{"db2"}, 0b01, true},
		{"postgres.mesh.internal.", dns.TypeAAAA, down{"db1", "db2"}, 0b00, true},
		{"_postgres._tcp.mesh.internal.", dns.TypeSRV, down{"db1"}, 0b10, true},
		{"_postgres._tcp.mesh.internal.", dns.TypeA, down{"db1"}, 0, true}, // no instances: NODATA
		{"db1.mesh.internal.", dns.TypeA, down{"db1"}, 0, true},
		{"mesh.internal.", dns.TypeSOA, nil, 0, true},
		{"nope.mesh.internal.", dns.TypeA, nil, 0, false},
		{"Db1.mesh.internal.", dns.TypeA, nil, 0, false}, // not lower case
		{"big.mesh.internal.", dns.TypeA, nil, 0, false}, // more than MaxUp
		{"_big._tcp.mesh.internal.", dns.TypeSRV, nil, 0, false},
	}
	for _, tt := range tests {
		up, ok := z.Up([]byte(tt.name), tt.qtype, tt.health)
		if ok != tt.ok || up.Bits() != tt.bits {
			t.Errorf("Up(%s, %s): got %b, %v, want %b, %v", tt.name, dns.TypeToString[tt.qtype], up.Bits(), ok, tt.bits, tt.ok)
		}
		if !ok {
			continue
		}
		want, _ := z.Answer(tt.name, tt.qtype, tt.health)
		got, _ := z.Answer(tt.name, tt.qtype, up)
		if short(got.Answer) != short(want.Answer) || short(got.Extra) != short(want.Extra) {
			t.Errorf("Answer(%s, %s) from the record: got %q %q, want %q %q", tt.name, dns.TypeToString[tt.qtype],
				short(got.Answer), short(got.Extra), short(want.Answer), short(want.Extra))
		}
	}
}
