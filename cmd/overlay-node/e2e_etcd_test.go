package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/meshsource"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/etcdtest"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// etcdMesh is a test mesh kept in etcd, with etcd on the first host.
type etcdMesh struct {
	*testMesh
	etcd   *etcdtest.Server
	prefix string
}

func newEtcdMesh(t *testing.T, hosts []*nstest.Host) *etcdMesh {
	t.Helper()
	etcdtest.Require(t)
	m := newTestMesh(t, hosts, nil)
	srv := etcdtest.StartOn(t, hosts[0])
	return &etcdMesh{testMesh: m, etcd: srv, prefix: "/e2e/"}
}

// push runs overlay-node push of the mesh file from host h and returns
// its output and error.
func (m *etcdMesh) push(h *nstest.Host, path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, m.bin, "push", "-c", path, "--etcd", m.etcd.URL, "--prefix", m.prefix)
	return string(out), err
}

// mustPush pushes the mesh file and returns the revision push printed.
func (m *etcdMesh) mustPush() int64 {
	m.t.Helper()
	out, err := m.push(m.nodes[0].host, m.path)
	if err != nil {
		m.t.Fatalf("push: %v\n%s", err, out)
	}
	var rev int64
	i := strings.LastIndex(out, "revision ")
	if i < 0 {
		m.t.Fatalf("push printed no revision: %q", out)
	}
	fmt.Sscanf(out[i:], "revision %d", &rev)
	return rev
}

// startEtcd runs overlay-node up --etcd for n and waits until it logs line.
func (m *etcdMesh) startEtcd(n *meshNode, line string, extra ...string) {
	m.t.Helper()
	args := append([]string{"up", "--etcd", m.etcd.URL, "--prefix", m.prefix, "-k", n.keyPath,
		"--interface", n.iface, "--cache", filepath.Join(m.dir, n.name+".cache")}, extra...)
	n.proc = n.host.Start(m.t, m.bin, args...)
	if !poll(15*time.Second, func() bool {
		return strings.Contains(n.proc.Output(), line) || n.proc.Wait(0) != nstest.ErrRunning
	}) || !strings.Contains(n.proc.Output(), line) {
		m.t.Fatalf("node %s did not log %q:\n%s", n.name, line, n.proc.Output())
	}
}

// waitRevision waits until n runs revision rev or later.
func waitRevision(t *testing.T, n *meshNode, rev int64) {
	t.Helper()
	var got int64
	if !poll(5*time.Second, func() bool { got = status(t, n).MeshRevision; return got >= rev }) {
		t.Fatalf("node %s runs revision %d, want %d:\n%s", n.name, got, rev, n.proc.Output())
	}
}

// Nodes started with --etcd and no mesh file form the mesh pushed to
// etcd, take a fourth node pushed later without restart or lost
// sessions, refuse a bad push and a bad revision, and keep forwarding
// through an etcd outage, a node restarted meanwhile coming up from its
// cache.
func TestEtcdMesh(t *testing.T) {
	lan := nstest.NewLAN(t, 4)
	m := newEtcdMesh(t, lan.Hosts)
	a, b, c, d := m.nodes[0], m.nodes[1], m.nodes[2], m.nodes[3]
	m.write([]*meshNode{a, b, c})
	rev := m.mustPush()
	obsCleanupSockets(t, a.iface)
	m.startEtcd(a, "node up", "--metrics", obsMetricsAddr(a))
	for _, n := range []*meshNode{b, c} {
		m.startEtcd(n, "node up")
	}
	ping(t, a, b.addr.Addr())
	ping(t, b, c.addr.Addr())
	ping(t, c, a.addr.Addr())
	if st := status(t, a); st.MeshSource != "etcd" || st.MeshRevision != rev {
		t.Errorf("status: source %q, revision %d; want etcd, %d", st.MeshSource, st.MeshRevision, rev)
	}
	before := peerStatus(t, status(t, a), "b")

	// A fourth node.
	m.write(m.nodes)
	pushed := time.Now()
	rev = m.mustPush()
	for _, n := range []*meshNode{a, b, c} {
		waitRevision(t, n, rev)
	}
	t.Logf("revision %d in force on a, b and c %s after push started", rev, time.Since(pushed).Round(time.Millisecond))
	m.startEtcd(d, "node up")
	for _, n := range []*meshNode{a, b, c} {
		ping(t, n, d.addr.Addr())
	}
	after := peerStatus(t, status(t, a), "b")
	if after.HandshakesCompleted != before.HandshakesCompleted || *after.LatestHandshake != *before.LatestHandshake {
		t.Errorf("peer b: handshakes %d at %v after the push, want %d at %v (session kept)",
			after.HandshakesCompleted, after.LatestHandshake, before.HandshakesCompleted, before.LatestHandshake)
	}

	// A push with an error is refused with its line.
	bad := filepath.Join(m.dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[mesh]\nname = \"e2e\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := m.push(a.host, bad); err == nil || !strings.Contains(out, bad+":3:1: mesh.bogus") {
		t.Errorf("push of a bad file: err %v, output %q; want it refused at %s:3:1", err, out, bad)
	}
	// A bad revision written straight into etcd is rejected by every node.
	cli := m.etcd.Client()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, m.prefix+"mesh", "[mesh]\nname = \"e2e\"\nbogus = 1\n"); err != nil {
		t.Fatal(err)
	}
	for _, n := range m.nodes {
		waitLog(t, n, "reload failed; keeping the running configuration")
		if !strings.Contains(n.proc.Output(), "mesh.bogus") {
			t.Errorf("node %s does not say what is wrong with the revision:\n%s", n.name, n.proc.Output())
		}
	}
	ping(t, a, d.addr.Addr())
	if st := status(t, a); st.MeshRevision != rev || len(st.Peers) != 3 {
		t.Errorf("after a bad revision: a runs revision %d with %d peers, want %d with 3", st.MeshRevision, len(st.Peers), rev)
	}

	// etcd stops: traffic goes on, and a node restarted meanwhile comes up
	// from its cache.
	m.etcd.Stop()
	ping(t, a, b.addr.Addr())
	b.proc.Signal(syscall.SIGTERM)
	if err := b.proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("b did not stop: %v", err)
	}
	m.startEtcd(b, "node up")
	if !strings.Contains(b.proc.Output(), "starting from the cached mesh") {
		t.Errorf("b does not say it started from its cache:\n%s", b.proc.Output())
	}
	ping(t, b, c.addr.Addr())
	ping(t, d, b.addr.Addr())

	// etcd back: a new push applies everywhere.
	m.etcd.Start()
	pushed = time.Now()
	rev = m.mustPush()
	for _, n := range m.nodes {
		waitRevision(t, n, rev)
	}
	ping(t, b, a.addr.Addr())
	if st := status(t, a); st.MeshWatchReconnects == 0 {
		t.Errorf("a counts no watch reconnects after the outage:\n%s", a.proc.Output())
	}
	// The metrics say the same: source, revision, when it was applied,
	// and the reconnects.
	samples := obsSamples(t, obsScrape(t, a))
	if v := obsSample(t, samples, `overlay_mesh_source_info{source="etcd"}`); v != 1 {
		t.Errorf("overlay_mesh_source_info{source=\"etcd\"} = %v, want 1", v)
	}
	if v := obsSample(t, samples, "overlay_mesh_revision"); v != float64(rev) {
		t.Errorf("overlay_mesh_revision = %v, want %d", v, rev)
	}
	if v := obsSample(t, samples, "overlay_config_last_load_timestamp_seconds"); v < float64(pushed.Unix()) {
		t.Errorf("overlay_config_last_load_timestamp_seconds = %v, before the last push at %d", v, pushed.Unix())
	}
	if v := obsSample(t, samples, "overlay_mesh_watch_reconnects_total"); v < 1 {
		t.Errorf("overlay_mesh_watch_reconnects_total = %v, want at least 1 after the outage", v)
	}
}

// pushWithPool pushes a mesh of the given nodes with the pool
// 10.100.0.128/25, for nodes that join.
func (m *etcdMesh) pushWithPool(nodes ...*meshNode) {
	m.t.Helper()
	m.meshKeys = "pool = \"10.100.0.128/25\"\n"
	m.write(nodes)
	m.mustPush()
}

// Two nodes joining at the same moment get different addresses from the
// pool and reach each other and the pushed node; one killed leaves the
// others' meshes when its lease expires.
func TestEtcdJoin(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newEtcdMesh(t, lan.Hosts)
	a, x, y := m.nodes[0], m.nodes[1], m.nodes[2]
	x.name, y.name = "x", "y"
	m.pushWithPool(a)
	m.startEtcd(a, "node up")

	var wg sync.WaitGroup
	for _, n := range []*meshNode{x, y} {
		wg.Go(func() {
			m.startEtcd(n, "node up", "--join", n.name, "--endpoint", n.host.Addr.String()+":51820", "--lease-ttl", "5s")
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	addrOf := func(n *meshNode) string {
		out := n.host.MustExec(t, "ip", "-4", "-o", "addr", "show", "dev", n.iface)
		f := strings.Fields(string(out))
		for i, w := range f {
			if w == "inet" {
				return strings.Split(f[i+1], "/")[0]
			}
		}
		t.Fatalf("%s has no address: %q", n.iface, out)
		return ""
	}
	ax, ay := addrOf(x), addrOf(y)
	pool := netip.MustParsePrefix("10.100.0.128/25")
	if ax == ay || !pool.Contains(netip.MustParseAddr(ax)) || !pool.Contains(netip.MustParseAddr(ay)) {
		t.Fatalf("joined addresses %s and %s: want two different ones from the pool", ax, ay)
	}
	// Each joiner read the mesh before the other had registered, so it
	// learns of the other from the watch. Ping only once every node knows
	// every other: a handshake sent to a node that does not know the
	// sender yet is dropped, and WireGuard retries it only after 5 s.
	for _, n := range []*meshNode{a, x, y} {
		if !poll(5*time.Second, func() bool { return len(status(t, n).Peers) == 2 }) {
			t.Fatalf("%s has %d peers, want the other two", n.name, len(status(t, n).Peers))
		}
	}
	for _, p := range [][2]*meshNode{{x, y}, {y, x}, {a, x}, {a, y}} {
		to := ax
		if p[1] == y {
			to = ay
		}
		if err := nstest.Ping(t, p[0].host, to); err != nil {
			t.Errorf("%s -> %s: %v", p[0].name, p[1].name, err)
		}
	}

	// y dies without leaving: its lease expires and it is gone.
	y.proc.Signal(syscall.SIGKILL)
	y.proc.Wait(5 * time.Second)
	if !poll(15*time.Second, func() bool { return len(status(t, a).Peers) == 1 }) {
		t.Fatalf("a still has %d peers after y's lease expired", len(status(t, a).Peers))
	}
	peerStatus(t, status(t, a), "x")
	// x stops cleanly: it leaves at once.
	x.proc.Signal(syscall.SIGTERM)
	x.proc.Wait(10 * time.Second)
	if !poll(3*time.Second, func() bool { return len(status(t, a).Peers) == 0 }) {
		t.Errorf("a still has %d peers after x stopped", len(status(t, a).Peers))
	}
}

// A joining node's record is published only once the node answers: at
// the moment a mesh read from etcd first has it, its UDP port is bound,
// and a running node that pings it from that moment gets replies well
// within WireGuard's 5 s handshake retry, which a handshake sent to a
// node not yet listening waits for. A join whose start fails leaves
// nothing in etcd, and no other node ever adds it.
func TestEtcdJoinPublishedOnceAnswering(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newEtcdMesh(t, lan.Hosts)
	a, x := m.nodes[0], m.nodes[1]
	x.name = "x"
	// Idle nodes make x's start take about as long as in a real mesh: the
	// time between a record published too early and the socket bound.
	var idle strings.Builder
	for i := range 500 {
		k, err := crypto.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&idle, "\n[[node]]\nname = \"idle%d\"\npublic_key = %q\naddress = \"10.101.%d.%d/16\"\n",
			i, k.PublicKey().String(), i/250, i%250+1)
	}
	m.tail = idle.String()
	m.pushWithPool(a)
	m.startEtcd(a, "node up")
	cli := m.etcd.Client()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	joinArgs := []string{"up", "--etcd", m.etcd.URL, "--prefix", m.prefix, "-k", x.keyPath,
		"--interface", x.iface, "--cache", filepath.Join(m.dir, "x.cache"),
		"--join", "x", "--endpoint", x.host.Addr.String() + ":51820"}

	// x cannot start: its interface name is taken.
	x.host.MustExec(t, "ip", "tuntap", "add", "dev", x.iface, "mode", "tun")
	p := x.host.Start(t, m.bin, joinArgs...)
	if err := p.Wait(15 * time.Second); err == nil || !strings.Contains(p.Output(), "is in use") {
		t.Fatalf("x with its interface taken: exit %v, want a failure saying so:\n%s", err, p.Output())
	}
	x.host.MustExec(t, "ip", "link", "del", x.iface)
	for _, dir := range []string{"members/", "pool/"} {
		if resp, err := cli.Get(ctx, m.prefix+dir, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
			t.Errorf("after x failed to start: %d keys under %s%s (err %v), want none", resp.Count, m.prefix, dir, err)
		}
	}
	if strings.Contains(a.proc.Output(), " peers=501 ") {
		t.Errorf("a added x, which never came up:\n%s", a.proc.Output())
	}

	// x starts; watch for the first mesh that has it, as any other node
	// reads it.
	other := meshsource.NewEtcd(cli, m.prefix, crypto.PublicKey{}, slog.New(slog.DiscardHandler))
	events := cli.Watch(ctx, m.prefix, clientv3.WithPrefix())
	x.proc = x.host.Start(t, m.bin, joinArgs...)
	var xAddr netip.Addr
	var bound []byte
	for !xAddr.IsValid() {
		select {
		case <-events:
		case <-ctx.Done():
			t.Fatalf("no mesh in etcd has x:\n%s", x.proc.Output())
		}
		// x, stopped while the mesh is read, is as it was when the change
		// was made.
		x.proc.Signal(syscall.SIGSTOP)
		var err error
		xAddr, err = addrIn(ctx, other, "x")
		if xAddr.IsValid() {
			bound, err = x.host.Exec(ctx, "ss", "-Hlun", "sport = :51820")
		}
		x.proc.Signal(syscall.SIGCONT)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(bytes.TrimSpace(bound)) == 0 {
		t.Errorf("x's record is in etcd, but its UDP port 51820 is not bound")
	}
	start := time.Now()
	err := nstest.Ping(t, a.host, xAddr.String())
	if took := time.Since(start); err != nil || took > 2*time.Second {
		t.Errorf("a -> x from the moment x's record was in etcd: %v after %s; want replies within 2s\nx:\n%s", err, took.Round(time.Millisecond), x.proc.Output())
	}
	waitLog(t, x, "node up")
}

// addrIn returns the address of node name in the mesh src reads, or the
// zero address when it is not in it.
func addrIn(ctx context.Context, src *meshsource.Etcd, name string) (netip.Addr, error) {
	snap, err := src.Read(ctx)
	if err != nil {
		return netip.Addr{}, err
	}
	mesh, err := config.Parse(snap.Name, snap.Data)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, n := range mesh.Nodes {
		if n.Name == name {
			return n.Addresses[0].Addr(), nil
		}
	}
	return netip.Addr{}, nil
}
