package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestContainersErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, key, msg, hint string
	}{
		{"host bits", head + nodeA + "containers = [‸\"172.20.1.1/24\"]\n" + nodeB,
			"node.containers", "has host bits set", `"172.20.1.0/24"`},
		{"too small", head + nodeA + "containers = [‸\"172.20.1.0/31\"]\n" + nodeB,
			"node.containers", "too small for containers", "/30"},
		{"two of a family", head + nodeA + "containers = [\"172.20.1.0/24\", ‸\"172.21.1.0/24\"]\n" + nodeB,
			"node.containers", "is a second IPv4 container network (line 7)", "at most one IPv4 and one IPv6"},
		{"not a prefix", head + nodeA + "containers = [‸\"172.20.1.0\"]\n" + nodeB,
			"node.containers", "172.20.1.0", ""},
		{"not strings", head + nodeA + "containers = ‸\"172.20.1.0/24\"\n" + nodeB,
			"node.containers", "must be an array of strings", `containers = ["172.20.1.0/24", "fd00:20:1::/64"]`},
		{"overlaps other node's containers", head + nodeA + "containers = [\"172.20.0.0/16\"]\n" + nodeB + "containers = [‸\"172.20.2.0/24\"]\n",
			"node.containers", "172.20.2.0/24 overlaps 172.20.0.0/16 of node \"a\" (line 7)", "must not overlap"},
		{"overlaps other node's subnet", head + nodeA + "subnets = [\"192.168.60.0/24\"]\n" + nodeB + "containers = [‸\"192.168.60.0/25\"]\n",
			"node.containers", "overlaps 192.168.60.0/24", "must not overlap"},
		{"subnet overlaps other node's containers", head + nodeA + "containers = [\"192.168.60.0/24\"]\n" + nodeB + "subnets = [‸\"192.168.0.0/16\"]\n",
			"node.subnets", "overlaps 192.168.60.0/24", "must not overlap"},
		{"overlaps own subnet", head + nodeA + "subnets = [\"192.168.60.0/24\"]\ncontainers = [‸\"192.168.60.0/24\"]\n" + nodeB,
			"node.containers", "overlaps 192.168.60.0/24 (line 7) of the same node", "keep it apart from its subnets"},
		{"contains own address", head + nodeA + "containers = [‸\"10.100.0.0/16\"]\n" + nodeB,
			"node.containers", "contains 10.100.0.1, the address of node \"a\" (line 6), and 1 more overlay address", "outside the overlay addresses"},
		{"misspelt", head + nodeA + "‸container = [\"172.20.1.0/24\"]\n" + nodeB,
			"node.container", "unknown key", "containers"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantOneError(t, tc.doc, tc.key, tc.msg, tc.hint) })
	}
}

// Containers are routed like subnets: other nodes allow and route them,
// and a node's groups cover them.
func TestContainersRouted(t *testing.T) {
	doc := head + "[[allow]]\nfrom = [\"group:web\"]\nto = [\"*\"]\n" +
		nodeA + "groups = [\"web\"]\ncontainers = [\"172.20.1.0/24\", \"fd00:20:1::/64\"]\n" + nodeB
	m, err := Parse("test.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a := &m.Nodes[0]
	want := []netip.Prefix{netip.MustParsePrefix("172.20.1.0/24"), netip.MustParsePrefix("fd00:20:1::/64")}
	if !slices.Equal(a.Containers, want) {
		t.Fatalf("containers: got %v, want %v", a.Containers, want)
	}
	ips := a.AllowedIPs()
	for _, p := range want {
		if !slices.Contains(ips, p) {
			t.Errorf("allowed IPs %v: want %v in them", ips, p)
		}
	}
	if got := a.RoutedPrefixes(); !slices.Equal(got, want) {
		t.Errorf("routed prefixes: got %v, want %v", got, want)
	}
	pol := m.Policy()
	for _, src := range []string{"172.20.1.9", "fd00:20:1::9"} {
		if !pol.Decide(netip.MustParseAddr(src), netip.MustParseAddr("10.100.0.2"), 6, 80).Allow {
			t.Errorf("a container of group web at %s: got denied, want the group's rule to admit it", src)
		}
	}
	if pol.Decide(netip.MustParseAddr("172.20.2.9"), netip.MustParseAddr("10.100.0.2"), 6, 80).Allow {
		t.Errorf("an address outside the group's containers: got allowed, want denied")
	}
}
