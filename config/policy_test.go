package config

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/overlay-node/overlay-node/policy"
)

// segHead is a mesh of two grouped nodes: a (web, 10.100.0.1, subnet
// 172.20.1.0/24) and b (db, 10.100.0.2), lines 1-12.
const segHead = head +
	"[[node]]\nname = \"a\"\npublic_key = \"" + keyA + "\"\naddress = \"10.100.0.1/24\"\nsubnets = [\"172.20.1.0/24\"]\ngroups = [\"web\"]\n" +
	"[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = \"10.100.0.2/24\"\ngroups = [\"db\"]\n"

func TestSegmentationErrors(t *testing.T) {
	allow := "[[allow]]\nfrom = [\"group:web\"]\nto = [\"group:db\"]\n"
	expect := "[[expect]]\nfrom = \"node:a\"\nto = \"node:b\"\nport = \"5432/tcp\"\n"
	tests := []struct {
		name, doc, key, msg, hint string
	}{
		// [mesh] keys.
		{"deny value", head + "deny = ‸\"refuse\"\n" + nodeA, "mesh.deny", `"refuse" is not reject or drop`, "ICMP"},
		{"deny type", head + "deny = ‸true\n" + nodeA, "mesh.deny", "must be a string, not a boolean", `deny = "reject"`},
		{"conntrack zero", head + "conntrack_max = ‸0\n" + nodeA, "mesh.conntrack_max", "0 is out of range 1..16777216", "65536"},
		{"conntrack huge", head + "conntrack_max = ‸100000000\n" + nodeA, "mesh.conntrack_max", "out of range", ""},
		{"misspelt mesh key", head + "‸conntrack-max = 5\n" + nodeA, "mesh.conntrack-max", "unknown key", `did you mean "conntrack_max"`},

		// groups.
		{"group label", head + nodeA + nodeC("groups = [\"web\", ‸\"Web Tier\"]\n"), "node.groups", `"Web Tier" is not a DNS label`, `"web-tier"`},
		{"group twice", head + nodeA + nodeC("groups = [\"web\", ‸\"web\"]\n"), "node.groups", `"web" is listed twice`, "duplicate"},
		{"groups type", head + nodeA + nodeC("groups = ‸\"web\"\n"), "node.groups", "must be an array of strings, not a string", `groups = ["web", "prod"]`},
		{"group element type", head + nodeA + nodeC("groups = [‸1]\n"), "node.groups", "must hold strings, not an integer", ""},

		// [[allow]].
		{"allow unknown node", segHead + "[[allow]]\nfrom = [\"group:web\", ‸\"node:bb\"]\nto = [\"*\"]\n", "allow.from", `no node is named "bb"`, `did you mean "node:b"`},
		{"allow bad selector", segHead + "[[allow]]\nfrom = [‸\"web\"]\nto = [\"*\"]\n", "allow.from", `"web" is not a selector`, `"group:web"`},
		{"allow bad group", segHead + "[[allow]]\nfrom = [‸\"group:Web\"]\nto = [\"*\"]\n", "allow.from", "is not a DNS label", ""},
		{"allow empty group", segHead + "[[allow]]\nfrom = [‸\"group:\"]\nto = [\"*\"]\n", "allow.from", "names no group", ""},
		{"allow bad cidr", segHead + "[[allow]]\nfrom = [\"*\"]\nto = [‸\"10.0.0.0/33\"]\n", "allow.to", `"10.0.0.0/33" is not a CIDR`, "prefix length"},
		{"allow host bits", segHead + "[[allow]]\nfrom = [\"*\"]\nto = [‸\"10.100.0.1/24\"]\n", "allow.to", "has host bits set", `"10.100.0.0/24"`},
		{"allow bad port", segHead + allow + "ports = [\"22/tcp\", ‸\"70000/tcp\"]\n", "allow.ports", "port 70000 is out of range 1..65535", "5432/tcp"},
		{"allow port zero", segHead + allow + "ports = [‸\"0/udp\"]\n", "allow.ports", "port 0 is out of range", ""},
		{"allow range backwards", segHead + allow + "ports = [‸\"9000-8000/tcp\"]\n", "allow.ports", "runs backwards", ""},
		{"allow bad proto", segHead + allow + "ports = [‸\"80/sctp\"]\n", "allow.ports", `unknown protocol "sctp"`, "icmp"},
		{"allow ports empty", segHead + allow + "ports = ‸[]\n", "allow.ports", "allows nothing", `"any"`},
		{"allow from missing", segHead + "‸[[allow]]\nto = [\"*\"]\n", "allow.from", "missing", "group:NAME"},
		{"allow to empty", segHead + "[[allow]]\nfrom = [\"*\"]\nto = ‸[]\n", "allow.to", "is empty", ""},
		{"allow duplicate name", segHead + "[[allow]]\nname = \"x\"\nfrom = [\"*\"]\nto = [\"*\"]\n[[allow]]\nname = ‸\"x\"\nfrom = [\"*\"]\nto = [\"*\"]\n",
			"allow.name", `"x" is already the name of the rule at line 14`, "unique"},
		{"allow name clashes with default", segHead + allow + "[[allow]]\nname = ‸\"allow-1\"\nfrom = [\"*\"]\nto = [\"*\"]\n",
			"allow.name", `"allow-1" is already the name of the rule at line 14`, `"allow-N"`},
		{"allow unknown key", segHead + allow + "‸port = [\"22/tcp\"]\n", "allow.port", "unknown key", `did you mean "ports"`},
		{"allow not array", "‸allow = 1\n" + segHead, "allow", "must be an array of tables", "[[allow]]"},

		// [[expect]].
		{"expect fails allow", segHead + allow + "ports = [\"5432/tcp\"]\n" + "‸[[expect]]\nfrom = \"node:a\"\nto = \"node:b\"\nport = \"22/tcp\"\nverdict = \"allow\"\n",
			"expect", "expected allow, got deny: no rule allows 22/tcp from node a (10.100.0.1) to node b (10.100.0.2): rules allow traffic from node a (10.100.0.1) to node b (10.100.0.2), but not 22/tcp", "policy why"},
		{"expect fails deny", segHead + allow + "‸" + expect + "verdict = \"deny\"\n", "expect", `expected deny, got allow: rule "allow-1" (test.toml:14) allows 5432/tcp`, ""},
		{"expect fails without rules", segHead + "‸" + expect + "verdict = \"deny\"\n", "expect", "no [[allow]] rules", ""},
		{"expect reverse direction", segHead + allow + "‸[[expect]]\nfrom = \"10.100.0.2\"\nto = \"172.20.1.9\"\nport = \"icmp\"\nverdict = \"allow\"\n", "expect",
			"no rule allows anything from 10.100.0.2", ""},
		{"expect unknown node", segHead + allow + "[[expect]]\nfrom = ‸\"node:z\"\nto = \"node:b\"\nport = \"22/tcp\"\nverdict = \"deny\"\n", "expect.from", `no node is named "z"`, ""},
		{"expect group", segHead + allow + "[[expect]]\nfrom = ‸\"group:web\"\nto = \"node:b\"\nport = \"22/tcp\"\nverdict = \"deny\"\n", "expect.from", "is not a node or an address", "node:NAME"},
		{"expect port range", segHead + allow + "[[expect]]\nfrom = \"node:a\"\nto = \"node:b\"\nport = ‸\"1-2/tcp\"\nverdict = \"deny\"\n", "expect.port", "is not a single port", ""},
		{"expect port any", segHead + allow + "[[expect]]\nfrom = \"node:a\"\nto = \"node:b\"\nport = ‸\"any\"\nverdict = \"deny\"\n", "expect.port", "is not a single port", ""},
		{"expect verdict", segHead + allow + expect + "verdict = ‸\"accept\"\n", "expect.verdict", `"accept" is not a verdict`, `"allow"`},
		{"expect verdict missing", segHead + allow + "‸" + expect, "expect.verdict", "missing", `verdict = "allow"`},
		{"expect families", segHead + allow + "‸[[expect]]\nfrom = \"node:a\"\nto = \"fd00::1\"\nport = \"icmp\"\nverdict = \"deny\"\n", "expect", "no addresses of the same family", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantOneError(t, tt.doc, tt.key, tt.msg, tt.hint) })
	}
}

// TestSegmentationEveryError checks that one file with many problems in its
// rules reports all of them.
func TestSegmentationEveryError(t *testing.T) {
	doc, at := unmark(segHead + "[[allow]]\nfrom = [‸\"node:nope\", ‸\"10.0.0.0/40\"]\nto = [‸\"web\"]\nports = [‸\"0/tcp\", \"22/tcp\", ‸\"icmpv6\"]\n" +
		"[[allow]]\nname = ‸\"allow-1\"\nfrom = [\"*\"]\nto = [\"*\"]\n")
	_, err := Parse("test.toml", []byte(doc))
	list := errorList(t, err)
	if len(list) != len(at) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(at), err)
	}
	for i, e := range list {
		if e.Line != at[i].Line || e.Col != at[i].Col {
			t.Errorf("error %d: got %d:%d, want %d:%d: %v", i, e.Line, e.Col, at[i].Line, at[i].Col, e)
		}
	}
}

func TestSegmentationParse(t *testing.T) {
	m, err := Parse("seg.toml", []byte(segHead+"[[allow]]\nname = \"web-to-db\"\nfrom = [\"group:web\"]\nto = [\"group:db\", \"10.9.0.0/16\"]\nports = [\"5432/tcp\", \"icmp\"]\n"+
		"[[allow]]\nfrom = [\"node:b\", \"10.100.0.7\"]\nto = [\"*\"]\n"+
		"[[expect]]\nfrom = \"node:a\"\nto = \"node:b\"\nport = \"5432/tcp\"\nverdict = \"allow\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Deny != "reject" || m.ConntrackMax != 65536 {
		t.Errorf("got deny %q, conntrack_max %d; want the defaults reject, 65536", m.Deny, m.ConntrackMax)
	}
	if len(m.Allow) != 2 || m.Allow[0].Name != "web-to-db" || m.Allow[1].Name != "allow-2" || m.Allow[1].Line != 19 {
		t.Fatalf("got rules %+v, want web-to-db and allow-2 at line 19", m.Allow)
	}
	if m.Allow[1].Ports != nil {
		t.Errorf("rule without ports: got %v, want nil (any)", m.Allow[1].Ports)
	}
	if got := m.Allow[1].From[1]; got.Kind != SelectPrefix || got.Prefix != netip.MustParsePrefix("10.100.0.7/32") {
		t.Errorf("an address selector: got %+v, want the host prefix 10.100.0.7/32", got)
	}
	p := m.Policy()
	if p.Rules() != 2 {
		t.Fatalf("got %d compiled rules, want 2", p.Rules())
	}
	a := netip.MustParseAddr
	tests := []struct {
		src, dst string
		proto    uint8
		port     uint16
		rule     int // -1: denied
	}{
		{"10.100.0.1", "10.100.0.2", policy.ProtoTCP, 5432, 0},
		{"172.20.1.99", "10.9.3.3", policy.ProtoTCP, 5432, 0}, // a's subnet is in group web
		{"10.100.0.1", "10.100.0.2", policy.ProtoICMP, 0, 0},
		{"10.100.0.1", "10.100.0.2", policy.ProtoTCP, 22, -1},
		{"10.100.0.2", "10.100.0.1", policy.ProtoTCP, 22, 1},
		{"10.100.0.7", "192.0.2.1", policy.ProtoUDP, 53, 1},
		{"10.100.0.3", "10.100.0.2", policy.ProtoTCP, 5432, -1},
	}
	for _, tt := range tests {
		v := p.Decide(a(tt.src), a(tt.dst), tt.proto, tt.port)
		if v.Rule != tt.rule || v.Allow != (tt.rule >= 0) {
			t.Errorf("%s -> %s %d/%d: got %+v, want rule %d", tt.src, tt.dst, tt.port, tt.proto, v, tt.rule)
		}
	}
	if got, want := p.Rule(1).Pos, "seg.toml:19"; got != want {
		t.Errorf("got position %q, want %q", got, want)
	}
	if w := m.Warnings(); len(w) != 0 {
		t.Errorf("got warnings %v, want none", w)
	}
}

func TestNoRulesNoPolicy(t *testing.T) {
	m, err := Parse("t.toml", []byte(segHead))
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Policy(); p != nil {
		t.Errorf("got a policy of %d rules from a mesh without [[allow]], want nil", p.Rules())
	}
}

func TestUnknownGroupWarns(t *testing.T) {
	doc, at := unmark(segHead + "[[allow]]\nfrom = [\"group:web\", ‸\"group:admin\"]\nto = [‸\"group:cache\", \"group:db\"]\n")
	m, err := Parse("w.toml", []byte(doc))
	if err != nil {
		t.Fatalf("an unknown group must not be an error: %v", err)
	}
	w := m.Warnings()
	if len(w) != 2 {
		t.Fatalf("got %d warnings, want 2: %v", len(w), w)
	}
	for i, e := range w {
		if e.Line != at[i].Line || e.Col != at[i].Col || !e.Warning {
			t.Errorf("warning %d: got %d:%d (warning %v), want %d:%d", i, e.Line, e.Col, e.Warning, at[i].Line, at[i].Col)
		}
		if !strings.HasPrefix(e.Error(), "w.toml:"+itoa(at[i].Line)+":"+itoa(at[i].Col)+": warning: allow.") || !strings.Contains(e.Msg, "no node is in group") {
			t.Errorf("got %q, want a positioned warning that names the group", e)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// FuzzParseSelector checks that parseSelector never panics, that every
// error has a hint, and that what it accepts formats back to itself.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"*", "group:web", "node:db-1", "10.0.0.0/8", "10.0.0.1", "fd00::/64", "::ffff:10.0.0.0/104", "group:", "web", "1.2.3.4/24", "fe80::1%eth0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, msg, hint := parseSelector(s)
		if msg != "" {
			if hint == "" {
				t.Fatalf("%q: error %q without a hint", s, msg)
			}
			return
		}
		back, msg, _ := parseSelector(sel.String())
		if msg != "" || back != sel {
			t.Fatalf("%q parses as %+v, whose String %q parses as %+v (%s)", s, sel, sel.String(), back, msg)
		}
	})
}
