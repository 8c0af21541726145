package main

import (
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// natKeepalive is the keepalive of the node behind NAT.
const natKeepalive = 5 * time.Second

// A node behind a masquerading router, with no endpoint and a keepalive,
// reaches the public nodes and is reached by them; when the router's
// mapping moves to other ports, traffic from the public nodes resumes
// within the keepalive and 2 s, because the keepalive roams them to the
// new mapping.
func TestNATMappingChange(t *testing.T) {
	for _, tool := range []string{"nft", "conntrack", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (make deps installs it); skipping", tool)
		}
	}
	lan := nstest.NewLAN(t, 3)
	router := lan.Hosts[2]
	behind := lan.AddSite(router) // its default route is the router
	router.MustExec(t, "nft", "add table ip nat; "+
		"add chain ip nat post { type nat hook postrouting priority srcnat; }; "+
		"add rule ip nat post oifname eth0 masquerade")
	m := newTestMesh(t, []*nstest.Host{lan.Hosts[0], lan.Hosts[1], behind.Host}, nil)
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]
	c.endpoint, c.keepalive = "-", natKeepalive.String()
	m.write(m.nodes)
	m.startAll()

	// c's keepalive opens the sessions: the public nodes cannot know where
	// c is until c speaks.
	for _, pub := range []*meshNode{a, b} {
		ping(t, c, pub.addr.Addr())
		ping(t, pub, c.addr.Addr())
	}
	before := peerStatus(t, status(t, a), "c").Endpoint
	if before.Addr() != router.Addr {
		t.Fatalf("a sees c at %v, want the router's address %s", before, router.Addr)
	}

	// Move the masquerade to other ports and forget every mapping: the
	// public nodes' packets to the old one now die at the router.
	router.MustExec(t, "nft", "flush chain ip nat post; "+
		"add rule ip nat post oifname eth0 meta l4proto udp masquerade to :40000-40999; "+
		"add rule ip nat post oifname eth0 masquerade")
	router.MustExec(t, "conntrack", "-F")
	moved := time.Now()
	for _, pub := range []*meshNode{a, b} {
		waited := pingUntilReply(t, pub, c.addr.Addr(), moved, natKeepalive+2*time.Second)
		t.Logf("%s -> c resumed %v after the mapping moved", pub.name, waited.Round(10*time.Millisecond))
	}
	after := peerStatus(t, status(t, a), "c").Endpoint
	if after.Addr() != router.Addr || after.Port() < 40000 || after.Port() > 40999 {
		t.Errorf("a sees c at %v after the move, want the router's new mapping (ports 40000-40999)", after)
	}
	transfer(t, a.host, c.host, c.addr.Addr(), 4<<20)
	t.Logf("c's endpoint as a sees it: %s -> %s; both public nodes resumed within %v", before, after, time.Since(moved).Round(10*time.Millisecond))
}

// pingUntilReply sends one echo a second from from to addr until one is
// answered, and returns how long after start that was; it fails t if none
// is answered within limit of start.
func pingUntilReply(t *testing.T, from *meshNode, addr netip.Addr, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for time.Since(start) < limit {
		if _, err := from.host.Exec(t.Context(), "ping", "-c1", "-W1", "-n", "-q", addr.String()); err == nil {
			return time.Since(start)
		}
	}
	t.Fatalf("%s -> %s: no echo answered within %v", from.name, addr, limit)
	return 0
}
