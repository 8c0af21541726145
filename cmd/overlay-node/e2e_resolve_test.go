package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// A node with no endpoint of its own follows its peer's host name: when
// the peer moves to a new address and its name with it, traffic resumes
// without a restart, through the periodic look-up (resolve_interval) or,
// with that too long to matter, through the look-up after a handshake went
// unanswered. The name resolves through /etc/netns/NS/hosts, which ip
// netns exec mounts over /etc/hosts in the node's namespace.
func TestHostnameEndpointFollowsMove(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval string
		// How long until traffic resumes at most. Periodically: Go's
		// resolver notices a changed hosts file within 5 s, then the
		// next look-up finds the new address. After a failed
		// handshake: the pings go unanswered for 15 s (keepalive
		// timeout and rekey timeout) before b initiates, then the
		// initiation for 5 s more, and the retry after the look-up
		// within 5 s more.
		limit time.Duration
	}{
		{"periodic", "1s", 15 * time.Second},
		{"after a failed handshake", "1h", 40 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) { testHostnameMove(t, tc.interval, tc.limit) })
	}
}

func testHostnameMove(t *testing.T, interval string, limit time.Duration) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b := m.nodes[0], m.nodes[1]
	const name = "peer-a.test"
	a.endpoint = name + ":51820"
	b.endpoint, b.keepalive = "-", "2s"
	m.meshKeys = "resolve_interval = \"" + interval + "\"\n"
	m.write(m.nodes)

	hosts := netnsHosts(t, b.host)
	writeInPlace(t, hosts, a.host.Addr.String()+" "+name+"\n")
	m.startAll()
	ping(t, b, a.addr.Addr())
	// Let a keepalive of b's reach a after a's last echo reply: a has
	// then nothing unanswered, so it will not handshake with b on its
	// own (from its new address, roaming b to it) once it moves.
	time.Sleep(3 * time.Second)

	// a moves; so does its name. b's old session points at an address
	// nobody has any more, and a cannot find b by itself: b has no
	// endpoint, and a has nothing to send.
	moved := netip.MustParseAddr("192.168.100.51")
	// (In this order: deleting a primary address deletes its secondaries.)
	a.host.MustExec(t, "ip", "addr", "del", a.host.Addr.String()+"/24", "dev", a.host.Iface)
	a.host.MustExec(t, "ip", "addr", "add", moved.String()+"/24", "dev", a.host.Iface)
	writeInPlace(t, hosts, moved.String()+" "+name+"\n")
	start := time.Now()
	waited := pingUntilReply(t, b, a.addr.Addr(), start, limit)
	t.Logf("b -> a resumed %v after a moved (resolve_interval %s)", waited.Round(10*time.Millisecond), interval)
	if !strings.Contains(b.proc.Output(), "peer endpoint re-resolved") {
		t.Errorf("b never logged re-resolving a's endpoint:\n%s", b.proc.Output())
	}
	if got, want := peerStatus(t, status(t, b), "a").Endpoint, netip.AddrPortFrom(moved, 51820); got != want {
		t.Errorf("b sends to a at %v, want %v", got, want)
	}
	// a has an endpoint, so it follows no names: it finds b by roaming.
	if strings.Contains(a.proc.Output(), "re-resolved") {
		t.Errorf("a re-resolved a name although it has an endpoint to follow:\n%s", a.proc.Output())
	}
}

// netnsHosts returns the hosts file ip netns exec gives h's processes,
// removed with its directory when the test ends.
func netnsHosts(t *testing.T, h *nstest.Host) string {
	t.Helper()
	dir := filepath.Join("/etc/netns", h.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "hosts")
}

// writeInPlace rewrites the file at path without replacing it: a bind
// mount of it shows the new content only if the inode stays the same.
func writeInPlace(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
