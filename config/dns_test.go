package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// dnsHead is head with a domain: lines 1-3.
const dnsHead = head + "domain = \"mesh.internal\"\n"

// svc returns a [[service]] table with the given keys.
func svc(keys string) string { return "[[service]]\n" + keys }

func TestParseDNS(t *testing.T) {
	doc := "[mesh]\nname = \"t\"\ndomain = \"Mesh.Internal.\"\ndns_upstream = [\"192.0.2.53:53\", \"[2001:db8::53]:5353\"]\n" + nodeA + nodeB +
		svc("name = \"db\"\nnodes = [\"a\", \"b\"]\nport = 5432\nprotocol = \"tcp\"\n") +
		svc("name = \"dns\"\nnodes = [\"b\"]\nport = 53\nprotocol = \"udp\"\n")
	m, err := Parse("dns.toml", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if m.Domain != "mesh.internal" {
		t.Errorf("got domain %q, want %q (lower case, no trailing dot)", m.Domain, "mesh.internal")
	}
	wantUp := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53"), netip.MustParseAddrPort("[2001:db8::53]:5353")}
	if !reflect.DeepEqual(m.DNSUpstream, wantUp) {
		t.Errorf("got upstreams %v, want %v", m.DNSUpstream, wantUp)
	}
	want := []Service{
		{Name: "db", Nodes: []string{"a", "b"}, Port: 5432, Protocol: "tcp"},
		{Name: "dns", Nodes: []string{"b"}, Port: 53, Protocol: "udp"},
	}
	if got := strip(m).Services; !reflect.DeepEqual(got, want) {
		t.Errorf("got services %+v, want %+v", got, want)
	}
	if m.Services[1].Line != 18 {
		t.Errorf("got line %d for the second service, want 18", m.Services[1].Line)
	}
}

// TestUpstreamAbsentVersusEmpty checks that a missing dns_upstream (use the
// host's resolvers) stays apart from an empty one (refuse), through Marshal.
func TestUpstreamAbsentVersusEmpty(t *testing.T) {
	for _, tt := range []struct {
		name, line string
		wantNil    bool
	}{
		{"absent", "", true},
		{"empty", "dns_upstream = []\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse("t.toml", []byte(dnsHead+tt.line+nodeA))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			out, err := marshal(m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			m2, err := Parse("t.toml", out)
			if err != nil {
				t.Fatalf("Parse of Marshal output: %v\n%s", err, out)
			}
			for i, mm := range []*Mesh{m, m2} {
				if got := mm.DNSUpstream == nil; got != tt.wantNil || len(mm.DNSUpstream) != 0 {
					t.Errorf("mesh %d: got upstreams %#v (nil %v), want nil %v and empty", i, mm.DNSUpstream, got, tt.wantNil)
				}
			}
		})
	}
}

func TestParseDNSErrors(t *testing.T) {
	const full = "nodes = [\"a\"]\nport = 5432\nprotocol = \"tcp\"\n"
	tests := []struct {
		name, doc, key, msg, hint string
	}{
		// [mesh] domain.
		{"domain type", head + "domain = ‸1\n" + nodeA, "mesh.domain", "must be a string, not an integer", `domain = "mesh.internal"`},
		{"domain empty", head + "domain = ‸\"\"\n" + nodeA, "mesh.domain", "is empty", "mesh.internal"},
		{"domain label", head + "domain = ‸\"mesh_net.internal\"\n" + nodeA, "mesh.domain", `label "mesh_net" is not a DNS label`, "letters, digits"},
		{"domain empty label", head + "domain = ‸\"mesh..internal\"\n" + nodeA, "mesh.domain", "has an empty label", "mesh.internal"},
		{"domain too long", head + "domain = ‸\"" + strings.Repeat("a.", 100) + "x\"\n" + nodeA, "mesh.domain", "more than 183", "shorter"},
		{"domain arpa", head + "domain = ‸\"in-addr.arpa\"\n" + nodeA, "mesh.domain", "under .arpa", ""},

		// [mesh] dns_upstream.
		{"upstream type", dnsHead + "dns_upstream = ‸\"192.0.2.53:53\"\n" + nodeA, "mesh.dns_upstream", "must be an array of strings, not a string", `["192.0.2.53:53"]`},
		{"upstream element type", dnsHead + "dns_upstream = [‸53]\n" + nodeA, "mesh.dns_upstream", "must hold strings, not an integer", ""},
		{"upstream no port", dnsHead + "dns_upstream = [‸\"192.0.2.53\"]\n" + nodeA, "mesh.dns_upstream", "has no port", `"192.0.2.53:53"`},
		{"upstream port zero", dnsHead + "dns_upstream = [‸\"192.0.2.53:0\"]\n" + nodeA, "mesh.dns_upstream", "has port 0", `"192.0.2.53:53"`},
		{"upstream host name", dnsHead + "dns_upstream = [‸\"dns.example:53\"]\n" + nodeA, "mesh.dns_upstream", "is a host name", "IP address"},
		{"upstream junk", dnsHead + "dns_upstream = [‸\"::1::2\"]\n" + nodeA, "mesh.dns_upstream", "is not an IP address and port", "[2001:db8::53]:53"},
		{"upstream unspecified", dnsHead + "dns_upstream = [‸\"0.0.0.0:53\"]\n" + nodeA, "mesh.dns_upstream", "not a unicast address", ""},
		{"upstream duplicate", dnsHead + "dns_upstream = [\"192.0.2.53:53\", ‸\"192.0.2.53:53\"]\n" + nodeA, "mesh.dns_upstream", "listed twice", "remove"},
		{"upstream in mesh", dnsHead + "dns_upstream = [‸\"10.100.0.1:53\"]\n" + nodeA, "mesh.dns_upstream", `overlay address of node "a"`, "outside the mesh"},
		{"upstream without domain", head + "dns_upstream = ‸[]\n" + nodeA, "mesh.dns_upstream", "without a domain", "domain ="},

		// [[service]].
		{"service without domain", head + nodeA + "‸" + svc("name = \"db\"\n"+full), "service", "services need a domain", "domain ="},
		{"service as table", dnsHead + nodeA + "[‸service]\nname = \"db\"\n", "service", "must be an array of tables, not a table", "[[service]]"},
		{"service unknown key", dnsHead + nodeA + svc("name = \"db\"\n"+full+"‸ports = 1\n"), "service.ports", "unknown key", `did you mean "port"`},
		{"service name missing", dnsHead + nodeA + "‸" + svc(full), "service.name", "missing", "DNS label"},
		{"service name label", dnsHead + nodeA + svc("name = ‸\"_db\"\n"+full), "service.name", "is not a DNS label", `"db"`},
		{"service name duplicate", dnsHead + nodeA + svc("name = \"db\"\n"+full) + svc("name = ‸\"db\"\n"+full), "service.name", `"db" is already the name of the service at line 8`, "unique"},
		{"service named like a node", dnsHead + nodeA + svc("name = ‸\"a\"\n"+full), "service.name", `"a" is already the name of a node`, "no node has"},
		{"service nodes missing", dnsHead + nodeA + "‸" + svc("name = \"db\"\nport = 1\nprotocol = \"tcp\"\n"), "service.nodes", "missing", `nodes = ["db1", "db2"]`},
		{"service nodes empty", dnsHead + nodeA + svc("name = \"db\"\nnodes = ‸[]\nport = 1\nprotocol = \"tcp\"\n"), "service.nodes", "is empty", ""},
		{"service nodes type", dnsHead + nodeA + svc("name = \"db\"\nnodes = ‸\"a\"\nport = 1\nprotocol = \"tcp\"\n"), "service.nodes", "must be an array of strings", `nodes = [`},
		{"service unknown node", dnsHead + nodeA + nodeB + svc("name = \"db\"\nnodes = [\"a\", ‸\"bb\"]\nport = 1\nprotocol = \"tcp\"\n"), "service.nodes", `"bb" is not the name of a node`, `did you mean "b"`},
		{"service node twice", dnsHead + nodeA + svc("name = \"db\"\nnodes = [\"a\", ‸\"a\"]\nport = 1\nprotocol = \"tcp\"\n"), "service.nodes", `"a" is listed twice`, "remove"},
		{"service port missing", dnsHead + nodeA + "‸" + svc("name = \"db\"\nnodes = [\"a\"]\nprotocol = \"tcp\"\n"), "service.port", "missing", "port = 5432"},
		{"service port range", dnsHead + nodeA + svc("name = \"db\"\nnodes = [\"a\"]\nport = ‸65536\nprotocol = \"tcp\"\n"), "service.port", "65536 is out of range 1..65535", ""},
		{"service port type", dnsHead + nodeA + svc("name = \"db\"\nnodes = [\"a\"]\nport = ‸\"5432\"\nprotocol = \"tcp\"\n"), "service.port", "must be an integer, not a string", "port = 5432"},
		{"service protocol missing", dnsHead + nodeA + "‸" + svc("name = \"db\"\nnodes = [\"a\"]\nport = 1\n"), "service.protocol", "missing", `"tcp"`},
		{"service protocol", dnsHead + nodeA + svc("name = \"db\"\nnodes = [\"a\"]\nport = 1\nprotocol = ‸\"sctp\"\n"), "service.protocol", `"sctp" is not a protocol`, `"tcp" or "udp"`},
		{"service protocol case", dnsHead + nodeA + svc("name = \"db\"\nnodes = [\"a\"]\nport = 1\nprotocol = ‸\"TCP\"\n"), "service.protocol", `"TCP" is not a protocol`, "lowercase"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantOneError(t, tt.doc, tt.key, tt.msg, tt.hint) })
	}
}
