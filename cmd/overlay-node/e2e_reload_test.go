package main

import (
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// waitLog waits until n's output contains s.
func waitLog(t *testing.T, n *meshNode, s string) {
	t.Helper()
	if !poll(5*time.Second, func() bool { return strings.Contains(n.proc.Output(), s) }) {
		t.Fatalf("node %s never logged %q:\n%s", n.name, s, n.proc.Output())
	}
}

// SIGHUP applies a changed mesh file: a new node and a new subnet appear,
// the unchanged peer keeps its session. A broken file changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]
	m.write([]*meshNode{a, b})
	m.start(a)
	m.start(b)
	ping(t, a, b.addr.Addr())
	before := peerStatus(t, status(t, a), "b").HandshakesCompleted

	b.subnets = []netip.Prefix{netip.MustParsePrefix("10.231.9.0/24")}
	m.write(m.nodes)
	for _, n := range []*meshNode{a, b} {
		if err := n.proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLog(t, n, "mesh file reloaded")
	}
	m.start(c)
	ping(t, a, c.addr.Addr())
	ping(t, c, b.addr.Addr())
	st := status(t, a)
	if got := peerStatus(t, st, "b").HandshakesCompleted; got != before {
		t.Errorf("peer b: got %d handshakes after reload, want %d (session kept)", got, before)
	}
	if out := a.host.MustExec(t, "ip", "route", "show", "10.231.9.0/24"); !strings.Contains(string(out), a.iface) {
		t.Errorf("no route for b's new subnet through %s: %q", a.iface, out)
	}
	hash := st.ConfigHash

	if err := os.WriteFile(m.path, []byte("[mesh]\nname = \"broken\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "reload failed")
	if !strings.Contains(a.proc.Output(), "bogus") {
		t.Errorf("reload error does not name the bad key:\n%s", a.proc.Output())
	}
	if got := status(t, a); got.ConfigHash != hash || len(got.Peers) != 2 {
		t.Errorf("a failed reload changed the running config: hash %s, %d peers", got.ConfigHash, len(got.Peers))
	}
	ping(t, a, c.addr.Addr())
}
