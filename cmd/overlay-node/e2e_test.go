package main

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// Three real overlay-node processes in three namespaces, with a site LAN
// behind c: every pair pings, 32 MiB crosses byte-exact, and the site host
// is reachable from a and b through c.
func TestMeshThreeNodesAndSite(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	site := lan.AddSite(lan.Hosts[2])
	m := newTestMesh(t, lan.Hosts, map[int][]netip.Prefix{2: {site.Subnet}})
	m.startAll()

	for _, from := range m.nodes {
		for _, to := range m.nodes {
			if from != to {
				ping(t, from, to.addr.Addr())
			}
		}
	}
	a, b := m.nodes[0], m.nodes[1]
	transfer(t, a.host, b.host, b.addr.Addr(), 32<<20)

	for _, from := range m.nodes[:2] {
		ping(t, from, site.Addr)
	}
	transfer(t, b.host, site.Host, site.Addr, 4<<20)

	// Private keys appear nowhere a node reports: logs, status JSON, wg show.
	for _, n := range m.nodes {
		secret := n.key.Base64()
		statusJSON := n.host.MustExec(t, m.bin, "status", "--json", "--interface", n.iface)
		wgShow, _ := n.host.Exec(t.Context(), "wg", "show", n.iface, "private-key")
		for what, out := range map[string]string{"log": n.proc.Output(), "status": string(statusJSON), "wg show": string(wgShow)} {
			if strings.Contains(out, secret) {
				t.Errorf("node %s: its private key appears in its %s", n.name, what)
			}
		}
	}
}

// kill -9 one node and start it again: traffic resumes within seconds
// without touching the other nodes.
func TestRestartAfterKill(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	m.startAll()
	a, b := m.nodes[0], m.nodes[1]
	ping(t, a, b.addr.Addr())

	if err := b.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := b.proc.Wait(5 * time.Second); err == nstest.ErrRunning {
		t.Fatal("node b survived SIGKILL")
	}
	m.start(b)
	// a still holds the old session; the first packet from it tells the
	// restarted b to handshake at once instead of after a's 15 s timeout.
	start := time.Now()
	ping(t, a, b.addr.Addr())
	ping(t, b, a.addr.Addr())
	t.Logf("traffic resumed %v after restart", time.Since(start).Round(time.Millisecond))
}

// SIGTERM removes the interface and its routes, also when it arrives
// while the node is still starting: it must not kill the process with the
// interface half set up.
func TestShutdownCleansUp(t *testing.T) {
	for _, tc := range []struct{ name, after string }{
		{"up", "node up"},
		{"starting", "serving WireGuard UAPI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lan := nstest.NewLAN(t, 2)
			m := newTestMesh(t, lan.Hosts, nil)
			a := m.nodes[0]
			m.startUntil(a, tc.after)
			if err := a.proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := a.proc.Wait(5 * time.Second); err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, a.proc.Output())
			}
			if out, err := a.host.Exec(t.Context(), "ip", "link", "show", a.iface); err == nil {
				t.Errorf("interface %s still exists after shutdown:\n%s", a.iface, out)
			}
		})
	}
}
