package main

import (
	"strings"
	"testing"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// An underlay that carries less than the mesh MTU plus WireGuard's
// overhead: links of MTU 1400 under the default mesh MTU of 1420. Full-size
// inner packets become outer datagrams of up to 1480 bytes, which the node
// must still deliver (docs/datapath.md, "Path MTU"): a 64 MiB TCP transfer
// arrives byte-exact, a packet between the underlay MTU and the mesh MTU
// passes with the don't-fragment bit set, and one over the mesh MTU gets
// the kernel's answer at once.
func TestUnderlayBelowMeshMTU(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	lan.SetMTU(1400)
	m := newTestMesh(t, lan.Hosts, nil)
	m.startAll()
	a, b := m.nodes[0], m.nodes[1]
	ping(t, a, b.addr.Addr())

	transfer(t, a.host, b.host, b.addr.Addr(), 64<<20)
	transfer(t, b.host, a.host, a.addr.Addr(), 8<<20)

	// 1392 bytes of ICMP data make an inner packet of 1420, the mesh MTU,
	// and an outer one of 1480, over the underlay's 1400.
	if out, err := a.host.Exec(t.Context(), "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-M", "do", "-s", "1392", b.addr.Addr().String()); err != nil {
		t.Errorf("ping -M do at the mesh MTU: %v", err)
	} else if !strings.Contains(string(out), " 0% packet loss") {
		t.Errorf("ping -M do at the mesh MTU lost packets:\n%s", out)
	}
	out, err := a.host.Exec(t.Context(), "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1393", b.addr.Addr().String())
	if err == nil || !strings.Contains(string(out), "message too long, mtu=1420") {
		t.Errorf("ping -M do over the mesh MTU: got %v:\n%s\nwant the kernel's \"message too long, mtu=1420\"", err, out)
	}
	for _, n := range m.nodes {
		if got := status(t, n).Drops["send_failed"]; got != 0 {
			t.Errorf("node %s: %d send_failed drops, want 0", n.name, got)
		}
	}
}
