package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// meshNode is one node of a namespace test mesh.
type meshNode struct {
	name    string
	host    *nstest.Host
	key     crypto.PrivateKey
	keyPath string
	addr    netip.Prefix // overlay address, 10.100.0.i/24
	addr6   netip.Prefix // optional second overlay address
	subnets []netip.Prefix
	// containers are its container networks, written when set before write.
	containers []netip.Prefix
	groups     []string
	iface      string
	proc       *nstest.Proc

	// How the mesh file lists it: endpoint, if set, replaces host:51820
	// ("-" omits the key, as for a node behind NAT); keepalive is written
	// when set.
	endpoint  string
	keepalive string
}

// testMesh is a generated mesh.toml over nstest hosts, node i on host i.
type testMesh struct {
	t     *testing.T
	bin   string
	dir   string
	path  string
	nodes []*meshNode
	// meshKeys and tail are written into [mesh] and after the nodes.
	meshKeys, tail string
}

// newTestMesh generates keys and a mesh file for one node per host. Each
// node's interface name is unique across test binaries because the UAPI
// socket path is global.
func newTestMesh(t *testing.T, hosts []*nstest.Host, subnets map[int][]netip.Prefix) *testMesh {
	t.Helper()
	m := &testMesh{t: t, bin: nstest.BuildOverlayNode(t), dir: t.TempDir()}
	m.path = filepath.Join(m.dir, "mesh.toml")
	for i, h := range hosts {
		key, err := crypto.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		n := &meshNode{
			name:    string(rune('a' + i)),
			host:    h,
			key:     key,
			keyPath: filepath.Join(m.dir, fmt.Sprintf("%c.key", 'a'+i)),
			addr:    netip.MustParsePrefix(fmt.Sprintf("10.100.0.%d/24", i+1)),
			subnets: subnets[i],
			iface:   nstest.UniqueIfName("ovl"),
		}
		if err := os.WriteFile(n.keyPath, []byte(key.Base64()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		m.nodes = append(m.nodes, n)
	}
	m.write(m.nodes)
	return m
}

// write writes the mesh file with the given nodes.
func (m *testMesh) write(nodes []*meshNode) {
	m.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[mesh]\nname = \"e2e\"\nport = 51820\n%s", m.meshKeys)
	for _, n := range nodes {
		addr := fmt.Sprintf("%q", n.addr.String())
		if n.addr6.IsValid() {
			addr = fmt.Sprintf("[%q, %q]", n.addr.String(), n.addr6.String())
		}
		fmt.Fprintf(&b, "\n[[node]]\nname = %q\npublic_key = %q\naddress = %s\n",
			n.name, n.key.PublicKey().String(), addr)
		switch n.endpoint {
		case "":
			fmt.Fprintf(&b, "endpoint = \"%s:51820\"\n", n.host.Addr)
		case "-":
		default:
			fmt.Fprintf(&b, "endpoint = %q\n", n.endpoint)
		}
		if n.keepalive != "" {
			fmt.Fprintf(&b, "keepalive = %q\n", n.keepalive)
		}
		if len(n.subnets) > 0 {
			var s []string
			for _, p := range n.subnets {
				s = append(s, fmt.Sprintf("%q", p.String()))
			}
			fmt.Fprintf(&b, "subnets = [%s]\n", strings.Join(s, ", "))
		}
		if len(n.containers) > 0 {
			var s []string
			for _, p := range n.containers {
				s = append(s, fmt.Sprintf("%q", p.String()))
			}
			fmt.Fprintf(&b, "containers = [%s]\n", strings.Join(s, ", "))
		}
		if len(n.groups) > 0 {
			fmt.Fprintf(&b, "groups = [\"%s\"]\n", strings.Join(n.groups, `", "`))
		}
	}
	b.WriteString(m.tail)
	// Replaced whole, never rewritten in place: a node reloading at that
	// moment must read the old file or the new one, not half of it.
	tmp := m.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if err := os.Rename(tmp, m.path); err != nil {
		m.t.Fatal(err)
	}
}

// poll checks cond every 20 ms until it holds (true) or timeout passes
// (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitUntil fails t unless cond holds within timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// start runs `overlay-node up` for n and waits until its interface is up.
func (m *testMesh) start(n *meshNode, extra ...string) {
	m.t.Helper()
	m.startUntil(n, "node up", extra...)
}

// startUntil runs `overlay-node up` for n and waits until it logs line.
func (m *testMesh) startUntil(n *meshNode, line string, extra ...string) {
	m.t.Helper()
	args := append([]string{"up", "-c", m.path, "-k", n.keyPath, "--interface", n.iface}, extra...)
	n.proc = n.host.Start(m.t, m.bin, args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if strings.Contains(n.proc.Output(), line) {
			return
		}
		// Polled often: the shutdown test signals right after the line.
		if err := n.proc.Wait(time.Millisecond); err != nstest.ErrRunning {
			m.t.Fatalf("node %s exited: %v\n%s", n.name, err, n.proc.Output())
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("node %s not up after 10s:\n%s", n.name, n.proc.Output())
		}
	}
}

func (m *testMesh) startAll() {
	for _, n := range m.nodes {
		m.start(n)
	}
}

// ping fails the test unless from reaches addr through the mesh.
func ping(t *testing.T, from *meshNode, addr netip.Addr) {
	t.Helper()
	if err := nstest.Ping(t, from.host, addr.String()); err != nil {
		t.Fatalf("%s -> %s: %v", from.name, addr, err)
	}
}

// transfer moves size bytes over TCP and fails unless they arrive exactly.
func transfer(t *testing.T, from, to *nstest.Host, toAddr netip.Addr, size int64) {
	t.Helper()
	sent, got, err := nstest.Transfer(t, from, to, toAddr.String(), size)
	if err != nil {
		t.Fatal(err)
	}
	if sent != got {
		t.Fatalf("transfer %s -> %s: sha256 sent %x, received %x", from.Name, toAddr, sent, got)
	}
}
