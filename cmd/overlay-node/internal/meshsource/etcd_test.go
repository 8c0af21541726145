package meshsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/etcdtest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testKey(t *testing.T) string {
	t.Helper()
	return newKey(t).String()
}

func newKey(t *testing.T) crypto.PublicKey {
	t.Helper()
	k, err := crypto.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.PublicKey()
}

// testMesh is a valid mesh file with n nodes and a pool.
func testMesh(t *testing.T, n int) string {
	var b strings.Builder
	b.WriteString("[mesh]\nname = \"t\"\npool = \"10.100.1.0/24\"\n")
	for i := range n {
		fmt.Fprintf(&b, "\n[[node]]\nname = \"n%d\"\npublic_key = %q\naddress = \"10.100.0.%d/24\"\n", i, testKey(t), i+1)
	}
	return b.String()
}

func dial(t *testing.T, s *etcdtest.Server) *clientv3.Client {
	t.Helper()
	cli, err := Dial(EtcdConfig{Endpoints: []string{s.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// next waits for the next snapshot on src.
func next(t *testing.T, src Source, within time.Duration) Snapshot {
	t.Helper()
	select {
	case s := <-src.Updates():
		return s
	case <-time.After(within):
		t.Fatalf("no update within %s", within)
	}
	return Snapshot{}
}

func parse(t *testing.T, s Snapshot) *config.Mesh {
	t.Helper()
	m, err := config.Parse(s.Name, s.Data)
	if err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	return m
}

// A push is read, then every later push arrives on Updates within a
// second, at its revision; a compaction and an etcd restart are survived
// by a fresh read.
func TestEtcdReadWatch(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := dial(t, srv)
	src := NewEtcd(cli, "/t", crypto.PublicKey{}, quiet)
	if _, err := src.Read(ctx(t)); err == nil || !strings.Contains(err.Error(), "no mesh in etcd") {
		t.Fatalf("read before any push: got %v, want no mesh", err)
	}
	rev, err := Push(ctx(t), cli, "/t", []byte(testMesh(t, 2)))
	if err != nil {
		t.Fatal(err)
	}
	first, err := src.Read(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if first.Revision != rev || len(parse(t, first).Nodes) != 2 || first.Name != fmt.Sprintf("etcd:/t/mesh@%d", rev) {
		t.Fatalf("read: got %s with revision %d, want revision %d and 2 nodes", first.Name, first.Revision, rev)
	}
	src.Watch(first)
	defer src.Close()

	rev, _ = Push(ctx(t), cli, "/t", []byte(testMesh(t, 3)))
	if s := next(t, src, time.Second); s.Revision != rev || len(parse(t, s).Nodes) != 3 {
		t.Fatalf("after push: revision %d, %d nodes; want %d, 3", s.Revision, len(parse(t, s).Nodes), rev)
	}

	// An outage long enough for the probe to notice, then a compaction
	// of what the watch has not seen.
	srv.Stop()
	time.Sleep(ProbeInterval + requestTimeout + time.Second)
	srv.Start()
	rev, _ = Push(ctx(t), cli, "/t", []byte(testMesh(t, 4)))
	if _, err := cli.Compact(ctx(t), rev); err != nil {
		t.Fatal(err)
	}
	if s := next(t, src, 10*time.Second); len(parse(t, s).Nodes) != 4 {
		t.Fatalf("after restart: got %d nodes, want 4", len(parse(t, s).Nodes))
	}
	if src.Reconnects() == 0 {
		t.Errorf("reconnects: got 0 after an etcd restart")
	}
	rev, _ = Push(ctx(t), cli, "/t", []byte(testMesh(t, 5)))
	if s := next(t, src, time.Second); s.Revision != rev {
		t.Fatalf("after reconnect: revision %d, want %d", s.Revision, rev)
	}
}

// A node that started from its cache runs etcd's revision once it reads
// it, also when that revision re-pushed the cached mesh unchanged; a
// re-read of the revision it runs is not delivered again.
func TestEtcdWatchFromCacheTakesNewRevision(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := dial(t, srv)
	mesh := []byte(testMesh(t, 2))
	if _, err := Push(ctx(t), cli, "/t", mesh); err != nil {
		t.Fatal(err)
	}
	src := NewEtcd(cli, "/t", crypto.PublicKey{}, quiet)
	cached, err := src.Read(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	cached.Cached = true
	rev, err := Push(ctx(t), cli, "/t", mesh) // the same mesh again
	if err != nil {
		t.Fatal(err)
	}
	src.Watch(cached)
	defer src.Close()
	if s := next(t, src, 5*time.Second); s.Revision != rev || !bytes.Equal(s.Data, cached.Data) {
		t.Fatalf("got revision %d, want %d with the same mesh", s.Revision, rev)
	}
	select {
	case s := <-src.Updates():
		t.Fatalf("revision %d delivered again", s.Revision)
	case <-time.After(ProbeInterval + time.Second):
	}
}

// Nodes joining at the same moment get different addresses, the lowest
// free ones, and appear in the mesh once they publish; a name is never
// taken twice; a node that leaves is gone from the mesh.
func TestJoinConcurrent(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := dial(t, srv)
	if _, err := Push(ctx(t), cli, "/t", []byte(testMesh(t, 1))); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	ms := make([]*Membership, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			ms[i], errs[i] = Join(ctx(t), cli, "/t", Member{Name: fmt.Sprintf("j%d", i), PublicKey: testKey(t)}, 10*time.Second, quiet)
		})
	}
	wg.Wait()
	seen := map[string]string{}
	for i, m := range ms {
		if errs[i] != nil {
			t.Fatalf("join j%d: %v", i, errs[i])
		}
		a := m.Address().String()
		if other, ok := seen[a]; ok {
			t.Fatalf("j%d and %s both got %s", i, other, a)
		}
		seen[a] = fmt.Sprintf("j%d", i)
	}
	for i := 1; i <= n; i++ {
		if _, ok := seen[fmt.Sprintf("10.100.1.%d/24", i)]; !ok {
			t.Errorf("10.100.1.%d/24 was not claimed: got %v", i, seen)
		}
	}
	src := NewEtcd(cli, "/t", crypto.PublicKey{}, quiet)
	s, err := src.Read(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(parse(t, s).Nodes); got != 1 {
		t.Fatalf("mesh has %d nodes before they publish, want the pushed one", got)
	}
	for _, m := range ms {
		if err := m.Publish(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	s, _ = src.Read(ctx(t))
	if got := len(parse(t, s).Nodes); got != n+1 {
		t.Fatalf("mesh has %d nodes, want %d", got, n+1)
	}

	// A record that would not validate is refused before it is written.
	if _, err := Join(ctx(t), cli, "/t", Member{Name: "Bad_Name", PublicKey: testKey(t)}, 10*time.Second, quiet); err == nil || !strings.Contains(err.Error(), "record is invalid") {
		t.Fatalf("join as Bad_Name: got %v, want the record refused", err)
	}
	// The same name under another key is refused, even at once.
	if _, err := Join(ctx(t), cli, "/t", Member{Name: "j0", PublicKey: testKey(t)}, 10*time.Second, quiet); err == nil {
		t.Fatal("a second j0 joined")
	}
	if err := ms[0].Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	s, _ = src.Read(ctx(t))
	if got := len(parse(t, s).Nodes); got != n {
		t.Fatalf("after j0 left: mesh has %d nodes, want %d", got, n)
	}
	for _, m := range ms[1:] {
		m.Leave(ctx(t))
	}
}

// A node's claim is in its own mesh only, and wakes no other node's
// watch. Published, it is in every mesh, its own unchanged. A claim lost
// before it is published is not published.
func TestJoinPublish(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := dial(t, srv)
	if _, err := Push(ctx(t), cli, "/t", []byte(testMesh(t, 1))); err != nil {
		t.Fatal(err)
	}
	other := NewEtcd(cli, "/t", newKey(t), quiet)
	first, err := other.Read(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	other.Watch(first)
	defer other.Close()
	key := newKey(t)
	m, err := Join(ctx(t), cli, "/t", Member{Name: "x", PublicKey: key.String()}, 10*time.Second, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Leave(ctx(t))
	own := NewEtcd(cli, "/t", key, quiet)
	claimed, err := own.Read(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !hasNode(parse(t, claimed), "x") {
		t.Errorf("x's own mesh does not have x after its claim:\n%s", claimed.Data)
	}
	if s, err := other.Read(ctx(t)); err != nil || hasNode(parse(t, s), "x") {
		t.Errorf("another node's mesh has x before it published (err %v):\n%s", err, s.Data)
	}
	select {
	case s := <-other.Updates():
		t.Errorf("x's claim woke another node's watch: revision %d", s.Revision)
	case <-time.After(time.Second):
	}

	if err := m.Publish(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if s := next(t, other, time.Second); !hasNode(parse(t, s), "x") {
		t.Errorf("another node's mesh does not have x once it published:\n%s", s.Data)
	}
	if s, err := own.Read(ctx(t)); err != nil || !bytes.Equal(s.Data, claimed.Data) {
		t.Errorf("x's own mesh changed when it published (err %v):\n%s\nwant:\n%s", err, s.Data, claimed.Data)
	}

	lost, err := Join(ctx(t), cli, "/t", Member{Name: "y", PublicKey: testKey(t)}, 10*time.Second, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := lost.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := lost.Publish(ctx(t)); err == nil || !strings.Contains(err.Error(), "is gone") {
		t.Errorf("publish after the claim was revoked: %v, want the claim gone", err)
	}
}

func hasNode(m *config.Mesh, name string) bool {
	for _, n := range m.Nodes {
		if n.Name == name {
			return true
		}
	}
	return false
}

// A member that clashes with a pushed node is left out; the rest stays
// valid.
func TestComposeSkipsClashes(t *testing.T) {
	pushed := testMesh(t, 1)
	m, err := config.Parse("p", []byte(pushed))
	if err != nil {
		t.Fatal(err)
	}
	members := []Member{
		{Name: "n0", PublicKey: testKey(t), Address: "10.100.1.1/24"},                   // name of a pushed node
		{Name: "b", PublicKey: m.Nodes[0].PublicKey.String(), Address: "10.100.1.2/24"}, // its key
		{Name: "c", PublicKey: testKey(t), Address: "10.100.2.1/24"},                    // outside the pool
		{Name: "d", PublicKey: testKey(t), Address: "10.100.1.4/24", Groups: []string{"web"}},
		{Name: "Bad_Name", PublicKey: testKey(t), Address: "10.100.1.5/24"}, // no DNS label
		{Name: "e", PublicKey: "not a key", Address: "10.100.1.6/24"},
	}
	data, parsed := compose("c", []byte(pushed), members, quiet)
	got, err := config.Parse("c", data)
	if err != nil {
		t.Fatal(err)
	}
	if parsed == nil || len(parsed.Nodes) != len(got.Nodes) {
		t.Errorf("compose returned %v parsed, want the %d nodes of its mesh", parsed, len(got.Nodes))
	}
	if len(got.Nodes) != 2 || got.Nodes[1].Name != "d" || got.Nodes[1].Keepalive == 0 {
		t.Errorf("got %d nodes (%v), want n0 and d with a keepalive", len(got.Nodes), got.Nodes)
	}
}

// parseMesh is the mesh s holds, as the node gets it: parsed already by
// the source, or parsed now.
func parseMesh(s Snapshot) (*config.Mesh, error) {
	if s.Mesh != nil {
		return s.Mesh, nil
	}
	return config.Parse(s.Name, s.Data)
}

// With etcd's client certificate authentication, a client with the
// certificate pushes and reads; one without is refused.
func TestEtcdTLS(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	cli, err := Dial(EtcdConfig{Endpoints: []string{srv.URL}, CertFile: files.ClientCert, KeyFile: files.ClientKey, CAFile: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rev, err := Push(ctx(t), cli, "/t", []byte(testMesh(t, 1)))
	if err != nil {
		t.Fatalf("push with a client certificate: %v", err)
	}
	if s, err := NewEtcd(cli, "/t", crypto.PublicKey{}, quiet).Read(ctx(t)); err != nil || s.Revision != rev {
		t.Fatalf("read with a client certificate: revision %d, %v; want %d", s.Revision, err, rev)
	}

	anon, err := Dial(EtcdConfig{Endpoints: []string{srv.URL}, CAFile: files.CA})
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	short, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = Push(short, anon, "/t", []byte(testMesh(t, 1)))
	if err == nil {
		t.Fatal("push without a client certificate succeeded")
	}
	t.Logf("without a client certificate: %v", err)

	// Probe names what the timed-out request could not.
	full := EtcdConfig{Endpoints: []string{srv.URL}, CertFile: files.ClientCert, KeyFile: files.ClientKey, CAFile: files.CA}
	if err := Probe(ctx(t), full); err != nil {
		t.Errorf("probe with a client certificate: %v", err)
	}
	for _, tt := range []struct {
		name string
		cfg  EtcdConfig
		want string
	}{
		{"no client certificate", EtcdConfig{Endpoints: []string{srv.URL}, CAFile: files.CA}, "refused this client"},
		{"no CA", EtcdConfig{Endpoints: []string{srv.URL}, CertFile: files.ClientCert, KeyFile: files.ClientKey}, "certificate signed by unknown authority"},
		{"plain http to TLS", EtcdConfig{Endpoints: []string{strings.Replace(srv.URL, "https", "http", 1)}}, ""},
		{"nothing listening", EtcdConfig{Endpoints: []string{"http://" + deadAddr(t)}}, "connection refused"},
	} {
		err := Probe(ctx(t), tt.cfg)
		t.Logf("probe, %s: %v", tt.name, err)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: probe: %v, want none (the TCP port answers)", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: probe: %v, want an error saying %q", tt.name, err, tt.want)
		}
	}
	explained := Explain(ctx(t), EtcdConfig{Endpoints: []string{srv.URL}, CAFile: files.CA}, context.DeadlineExceeded)
	if !errors.Is(explained, context.DeadlineExceeded) || !strings.Contains(explained.Error(), "refused this client") {
		t.Errorf("Explain: %v, want the deadline and the refusal", explained)
	}
}

// The access control of docs/etcd.md, on a real etcd with client
// certificates as users: an operator (admin) may push; a node may read
// the mesh and join, but not push.
func TestEtcdRBAC(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	as := func(cert, key string) *clientv3.Client {
		cli, err := Dial(EtcdConfig{Endpoints: []string{srv.URL}, CertFile: cert, KeyFile: key, CAFile: files.CA})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	root, admin, node := as(files.RootCert, files.RootKey), as(files.AdminCert, files.AdminKey), as(files.ClientCert, files.ClientKey)

	const prefix = "/t/"
	grant := func(role string, perm clientv3.PermissionType, key string, prefixOf bool) {
		end := ""
		if prefixOf {
			end = clientv3.GetPrefixRangeEnd(key)
		}
		if _, err := root.RoleGrantPermission(ctx(t), role, key, end, perm); err != nil {
			t.Fatalf("grant %s %s: %v", role, key, err)
		}
	}
	for _, step := range []func() error{
		func() error {
			_, err := root.UserAddWithOptions(ctx(t), "root", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx(t), "root", "root"); return err },
		func() error { _, err := root.RoleAdd(ctx(t), "mesh-admin"); return err },
		func() error { _, err := root.RoleAdd(ctx(t), "mesh-node"); return err },
		func() error {
			_, err := root.UserAddWithOptions(ctx(t), "admin", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error {
			_, err := root.UserAddWithOptions(ctx(t), "node", "", &clientv3.UserAddOptions{NoPassword: true})
			return err
		},
		func() error { _, err := root.UserGrantRole(ctx(t), "admin", "mesh-admin"); return err },
		func() error { _, err := root.UserGrantRole(ctx(t), "node", "mesh-node"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	grant("mesh-admin", clientv3.PermissionType(clientv3.PermReadWrite), prefix+meshKey, false)
	grant("mesh-node", clientv3.PermissionType(clientv3.PermRead), prefix, true)
	grant("mesh-node", clientv3.PermissionType(clientv3.PermReadWrite), prefix+membersDir, true)
	grant("mesh-node", clientv3.PermissionType(clientv3.PermReadWrite), prefix+poolDir, true)
	if _, err := root.AuthEnable(ctx(t)); err != nil {
		t.Fatal(err)
	}

	rev, err := Push(ctx(t), admin, prefix, []byte(testMesh(t, 1)))
	if err != nil {
		t.Fatalf("push as admin: %v", err)
	}
	if _, err := Push(ctx(t), node, prefix, []byte(testMesh(t, 2))); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("push as node: %v, want permission denied", err)
	}
	m, err := Join(ctx(t), node, prefix, Member{Name: "joiner", PublicKey: testKey(t)}, 5*time.Second, quiet)
	if err != nil {
		t.Fatalf("join as node: %v", err)
	}
	defer m.Leave(ctx(t))
	if err := m.Publish(ctx(t)); err != nil {
		t.Fatalf("publish as node: %v", err)
	}
	s, err := NewEtcd(node, prefix, crypto.PublicKey{}, quiet).Read(ctx(t))
	if err != nil {
		t.Fatalf("read as node: %v", err)
	}
	if s.Revision <= rev || !strings.Contains(string(s.Data), `name = "joiner"`) {
		t.Errorf("read as node at revision %d (push at %d): want the joined member in:\n%s", s.Revision, rev, s.Data)
	}
}

// deadAddr returns a loopback address and port where nothing listens.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
