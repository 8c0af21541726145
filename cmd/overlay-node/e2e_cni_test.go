package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/vishvananda/netlink"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// cniRuntime calls the plugin through libcni from a host's namespace, as
// a container runtime on that host does.
type cniRuntime struct {
	t       *testing.T
	host    *nstest.Host
	cni     *libcni.CNIConfig
	list    *libcni.NetworkConfigList
	dataDir string // the plugin's leases: dataDir/overlay
}

// newCNIRuntime configures the network "overlay" for the node on iface,
// with its leases in a directory of the test's.
func newCNIRuntime(t *testing.T, host *nstest.Host, iface, cniVersion string) *cniRuntime {
	t.Helper()
	return newCNIRuntimeConf(t, host, fmt.Sprintf(`{"type": "overlay-node-cni", "interface": %q, "dataDir": "%%s"}`, iface), cniVersion)
}

// newCNIRuntimeConf is newCNIRuntime with the plugin's config given; a %s
// in it is replaced by the data directory.
func newCNIRuntimeConf(t *testing.T, host *nstest.Host, plugin, cniVersion string) *cniRuntime {
	t.Helper()
	r := &cniRuntime{t: t, host: host, dataDir: t.TempDir()}
	plugin = strings.Replace(plugin, "%s", r.dataDir, 1)
	list, err := libcni.NetworkConfFromBytes(fmt.Appendf(nil, `{"cniVersion": %q, "name": "overlay", "plugins": [%s]}`, cniVersion, plugin))
	if err != nil {
		t.Fatal(err)
	}
	r.list = list
	// libcni sets up its exec on first use, racily: concurrent ADDs need
	// one made up front.
	runner := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: cniversion.PluginDecoder{}}
	r.cni = libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(nstest.BuildCNIPlugin(t))}, t.TempDir(), runner)
	return r
}

func (r *cniRuntime) rt(c *nstest.Host, id string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: id, NetNS: "/var/run/netns/" + c.Name, IfName: "eth0"}
}

// in runs fn in the host's namespace: the plugin, a child of this thread,
// starts there.
func (r *cniRuntime) in(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return r.host.InNetns(func() error { return fn(ctx) })
}

func (r *cniRuntime) add(c *nstest.Host, id string) (*current.Result, error) {
	var res *current.Result
	err := r.in(func(ctx context.Context) error {
		out, err := r.cni.AddNetworkList(ctx, r.list, r.rt(c, id))
		if err != nil {
			return err
		}
		// NewResultFromResult converts to its own version; keep the one
		// the plugin answered with.
		v := out.Version()
		res, err = current.NewResultFromResult(out)
		if res != nil {
			res.CNIVersion = v
		}
		return err
	})
	return res, err
}

func (r *cniRuntime) mustAdd(c *nstest.Host, id string) *current.Result {
	r.t.Helper()
	res, err := r.add(c, id)
	if err != nil {
		r.t.Fatalf("ADD %s: %v", id, err)
	}
	return res
}

func (r *cniRuntime) del(c *nstest.Host, id string) error {
	return r.in(func(ctx context.Context) error { return r.cni.DelNetworkList(ctx, r.list, r.rt(c, id)) })
}

func (r *cniRuntime) check(c *nstest.Host, id string) error {
	return r.in(func(ctx context.Context) error { return r.cni.CheckNetworkList(ctx, r.list, r.rt(c, id)) })
}

func (r *cniRuntime) status() error {
	return r.in(func(ctx context.Context) error { return r.cni.GetStatusNetworkList(ctx, r.list) })
}

func (r *cniRuntime) gc(valid ...string) error {
	args := &libcni.GCArgs{}
	for _, id := range valid {
		args.ValidAttachments = append(args.ValidAttachments, types.GCAttachment{ContainerID: id, IfName: "eth0"})
	}
	return r.in(func(ctx context.Context) error { return r.cni.GCNetworkList(ctx, r.list, args) })
}

// leases returns the lease files: every name in the store but its lock.
func (r *cniRuntime) leases() []string {
	r.t.Helper()
	ents, err := os.ReadDir(filepath.Join(r.dataDir, "overlay"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.Name() != "lock" {
			out = append(out, e.Name())
		}
	}
	return out
}

// wantCNIError fails t unless err is a CNI error with code.
func wantCNIError(t *testing.T, what string, err error, code uint, msg string) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: got %v (%T), want CNI error %d", what, err, err, code)
	}
	if e.Code != code || !strings.Contains(e.Msg, msg) {
		t.Errorf("%s: got code %d %q, want code %d containing %q", what, e.Code, e.Msg, code, msg)
	}
}

// link returns the container's eth0, or nil when it has none.
func link(t *testing.T, c *nstest.Host) netlink.Link {
	t.Helper()
	var l netlink.Link
	c.InNetns(func() error { l, _ = netlink.LinkByName("eth0"); return nil })
	return l
}

// resultAddr is the result's address of the family of p.
func resultAddr(t *testing.T, res *current.Result, p netip.Prefix) netip.Addr {
	t.Helper()
	for _, ipc := range res.IPs {
		a, _ := netip.AddrFromSlice(ipc.Address.IP)
		if a = a.Unmap(); p.Contains(a) {
			return a
		}
	}
	t.Fatalf("result %v has no address in %s", res, p)
	return netip.Addr{}
}

// Two hosts, two containers on each, attached through the plugin as a
// runtime does: every container reaches every other by its own address,
// 32 MiB cross byte-exact at the mesh MTU, and DEL, CHECK, STATUS and GC
// do what the spec says.
func TestCNIContainersAcrossHosts(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	nets := [][]netip.Prefix{
		{netip.MustParsePrefix("172.20.1.0/24"), netip.MustParsePrefix("fd00:20:1::/64")},
		{netip.MustParsePrefix("172.20.2.0/24"), netip.MustParsePrefix("fd00:20:2::/64")},
	}
	for i, n := range m.nodes {
		n.containers = nets[i]
	}
	m.write(m.nodes)
	m.startAll()

	type container struct {
		host   *nstest.Host
		id     string
		rt     *cniRuntime
		v4, v6 netip.Addr
	}
	var cs []*container
	for i, n := range m.nodes {
		version := []string{"1.1.0", "1.0.0"}[i] // STATUS and GC are 1.1.0's, on host a
		rt := newCNIRuntime(t, n.host, n.iface, version)
		if i == 0 {
			if err := rt.status(); err != nil {
				t.Fatalf("STATUS with the node up: %v", err)
			}
		}
		for j := range 2 {
			c := &container{host: lan.AddNetns(fmt.Sprintf("c%d%d", i, j)), id: fmt.Sprintf("ctr-%d-%d", i, j), rt: rt}
			res := rt.mustAdd(c.host, c.id)
			if res.CNIVersion != version {
				t.Errorf("result version: got %s, want %s", res.CNIVersion, version)
			}
			c.v4, c.v6 = resultAddr(t, res, nets[i][0]), resultAddr(t, res, nets[i][1])
			if l := link(t, c.host); l == nil || l.Attrs().MTU != 1420 {
				t.Errorf("%s: got eth0 %v, want one with the mesh MTU 1420", c.id, l)
			}
			cs = append(cs, c)
		}
	}
	if cs[0].v4 == cs[1].v4 {
		t.Errorf("two containers on one host share %s", cs[0].v4)
	}

	for _, from := range cs {
		for _, to := range cs {
			if from == to {
				continue
			}
			if err := nstest.Ping(t, from.host, to.v4.String()); err != nil {
				t.Fatalf("%s -> %s (%s): %v", from.id, to.id, to.v4, err)
			}
		}
	}
	// IPv6 across hosts.
	if out, err := cs[0].host.Exec(t.Context(), "ping", "-6", "-c", "3", "-i", "0.2", "-W", "5", cs[3].v6.String()); err != nil {
		t.Errorf("%s -> %s over IPv6: %v\n%s", cs[0].id, cs[3].v6, err, out)
	}
	// Full-size segments: the container's MTU is the mesh MTU, so the
	// tunnel carries them whole; a larger one would not arrive at all,
	// as the node drops what it cannot carry.
	transfer(t, cs[0].host, cs[2].host, cs[2].v4, 32<<20)

	// CHECK passes, and fails once the container's default route is gone.
	c := cs[1]
	if err := c.rt.check(c.host, c.id); err != nil {
		t.Fatalf("CHECK after ADD: %v", err)
	}
	c.host.MustExec(t, "ip", "route", "del", "default")
	if err := c.rt.check(c.host, c.id); err == nil {
		t.Error("CHECK without the default route: passed, want an error")
	}

	// DEL removes the veth and frees the address, which the next ADD reuses;
	// a second DEL succeeds.
	for range 2 {
		if err := c.rt.del(c.host, c.id); err != nil {
			t.Fatalf("DEL: %v", err)
		}
	}
	if l := link(t, c.host); l != nil {
		t.Errorf("after DEL: eth0 still in the container")
	}
	if got := c.rt.leases(); len(got) != 2 {
		t.Errorf("after DEL: leases %v, want only the other container's two", got)
	}
	res := c.rt.mustAdd(c.host, "ctr-new")
	if got := resultAddr(t, res, nets[0][0]); got != c.v4 {
		t.Errorf("ADD after DEL: got %s, want the freed %s", got, c.v4)
	}

	// GC frees the leases of containers not listed.
	if err := c.rt.gc("ctr-new"); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := c.rt.leases(); len(got) != 2 {
		t.Errorf("after GC keeping ctr-new: leases %v, want its two", got)
	}
	if _, err := c.rt.add(cs[0].host, cs[0].id); err != nil {
		t.Fatalf("ADD after GC: %v", err)
	}

	// DEL of a container whose namespace is gone succeeds.
	gone := lan.AddNetns("gone")
	rt0 := c.rt
	rt0.mustAdd(gone, "ctr-gone")
	if out, err := exec.Command("ip", "netns", "delete", gone.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns delete: %v: %s", err, out)
	}
	if err := rt0.del(gone, "ctr-gone"); err != nil {
		t.Errorf("DEL of a gone namespace: %v", err)
	}

	// With the node stopped, STATUS fails and ADD fails, leaving nothing.
	a := m.nodes[0]
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	wantCNIError(t, "STATUS with the node stopped", rt0.status(), 50, "no overlay-node runs on interface "+a.iface)
	late := lan.AddNetns("late")
	before := len(rt0.leases())
	_, err := rt0.add(late, "ctr-late")
	wantCNIError(t, "ADD with the node stopped", err, types.ErrTryAgainLater, "no overlay-node runs")
	if link(t, late) != nil || len(rt0.leases()) != before {
		t.Errorf("a failed ADD left eth0 or a lease behind")
	}
	m.start(a)
	if err := rt0.status(); err != nil {
		t.Errorf("STATUS with the node up again: %v", err)
	}
}

// 100 ADD/DEL cycles, 10 containers at a time, leave no veth, no lease
// and no file behind; concurrent ADDs get distinct addresses.
func TestCNIManyCycles(t *testing.T) {
	lan := nstest.NewLAN(t, 1)
	m := newTestMesh(t, lan.Hosts, nil)
	n := m.nodes[0]
	n.containers = []netip.Prefix{netip.MustParsePrefix("172.20.1.0/24")}
	m.write(m.nodes)
	m.startAll()
	rt := newCNIRuntime(t, n.host, n.iface, "1.1.0")

	const workers, rounds = 10, 10
	ctrs := make([]*nstest.Host, workers)
	for i := range ctrs {
		ctrs[i] = lan.AddNetns(fmt.Sprintf("c%d", i))
	}
	for round := range rounds {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			seen = map[netip.Addr]string{}
		)
		for i, c := range ctrs {
			wg.Go(func() {
				id := fmt.Sprintf("ctr-%d-%d", round, i)
				res, err := rt.add(c, id)
				if err != nil {
					t.Errorf("ADD %s: %v", id, err)
					return
				}
				a, _ := netip.AddrFromSlice(res.IPs[0].Address.IP)
				mu.Lock()
				if other, dup := seen[a.Unmap()]; dup {
					t.Errorf("%s and %s both got %s", other, id, a)
				}
				seen[a.Unmap()] = id
				mu.Unlock()
			})
		}
		wg.Wait()
		if len(rt.leases()) != workers {
			t.Errorf("round %d: %d leases with %d containers", round, len(rt.leases()), workers)
		}
		for i, c := range ctrs {
			wg.Go(func() {
				if err := rt.del(c, fmt.Sprintf("ctr-%d-%d", round, i)); err != nil {
					t.Errorf("DEL: %v", err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	if got := rt.leases(); len(got) != 0 {
		t.Errorf("leases left: %v", got)
	}
	for _, c := range ctrs {
		if link(t, c) != nil {
			t.Errorf("%s: eth0 left", c.Name)
		}
	}
	var veths []netlink.Link
	n.host.InNetns(func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			if l.Type() == "veth" {
				veths = append(veths, l)
			}
		}
		return err
	})
	// eth0 is the host's own link to the LAN.
	if len(veths) != 1 || veths[0].Attrs().Name != "eth0" {
		names := []string{}
		for _, l := range veths {
			names = append(names, l.Attrs().Name)
		}
		t.Errorf("veths on the host after all DELs: %v, want only eth0", names)
	}
}

// Bad input gives a CNI error with the spec's code and leaves nothing
// half-configured.
func TestCNIBadInput(t *testing.T) {
	lan := nstest.NewLAN(t, 1)
	m := newTestMesh(t, lan.Hosts, nil)
	n := m.nodes[0]
	n.containers = []netip.Prefix{netip.MustParsePrefix("172.20.1.0/30")} // room for one container
	m.write(m.nodes)
	m.startAll()
	c1, c2 := lan.AddNetns("c1"), lan.AddNetns("c2")

	bad := newCNIRuntimeConf(t, n.host, `{"type": "overlay-node-cni", "interface": 7}`, "1.1.0")
	_, err := bad.add(c1, "x")
	wantCNIError(t, "malformed config", err, types.ErrDecodingFailure, "bad network config")

	unknown := newCNIRuntime(t, n.host, "nosuch0", "1.1.0")
	_, err = unknown.add(c1, "x")
	wantCNIError(t, "unknown interface", err, types.ErrTryAgainLater, "no overlay-node runs on interface nosuch0")

	rt := newCNIRuntime(t, n.host, n.iface, "1.1.0")
	_, err = rt.add(&nstest.Host{Name: "no-such-netns"}, "x")
	wantCNIError(t, "missing netns", err, types.ErrInvalidNetNS, "network namespace")

	rt.mustAdd(c1, "first")
	_, err = rt.add(c2, "second")
	wantCNIError(t, "exhausted network", err, types.ErrTryAgainLater, "is full")
	if link(t, c2) != nil || len(rt.leases()) != 1 {
		t.Errorf("failed ADDs left eth0 in the container or leases %v", rt.leases())
	}
	if link(t, c1) == nil {
		t.Error("the first container lost its eth0")
	}
}

// With segmentation rules in force, a rule naming a host's group applies
// to the containers on that host: web's container reaches db's container
// on the allowed port only, a denied port is refused at once, and db's
// container cannot open a connection back.
func TestCNISegmentation(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	web, db := m.nodes[0], m.nodes[1]
	web.groups, db.groups = []string{"web"}, []string{"db"}
	web.containers = []netip.Prefix{netip.MustParsePrefix("172.20.1.0/24")}
	db.containers = []netip.Prefix{netip.MustParsePrefix("172.20.2.0/24")}
	m.tail = webToDB
	m.write(m.nodes)
	m.startAll()

	attach := func(n *meshNode, name string) (*nstest.Host, netip.Addr) {
		c := lan.AddNetns(name)
		res := newCNIRuntime(t, n.host, n.iface, "1.1.0").mustAdd(c, "ctr-"+name)
		return c, resultAddr(t, res, n.containers[0])
	}
	webC, webAddr := attach(web, "webc")
	dbC, dbAddr := attach(db, "dbc")
	for _, c := range []*nstest.Host{webC, dbC} {
		serveTCPEcho(t, c, 5432)
		serveTCPEcho(t, c, 22)
	}

	c, err := dialTCP(webC, dbAddr, 5432, 5*time.Second)
	if err != nil {
		t.Fatalf("web's container -> db's container :5432: %v, want a connection", err)
	}
	defer c.Close()
	if err := echoTCP(c, []byte("allowed"), 5*time.Second); err != nil {
		t.Fatalf("web's container -> db's container :5432: echo: %v", err)
	}
	for _, tc := range []struct {
		what string
		from *nstest.Host
		to   netip.Addr
		port int
	}{
		{"web's container -> db's container", webC, dbAddr, 22},
		{"db's container -> web's container", dbC, webAddr, 5432},
		{"db's container -> web's container", dbC, webAddr, 22},
	} {
		if d, err := dialTCP(tc.from, tc.to, tc.port, rejectWithin); err == nil {
			d.Close()
			t.Errorf("%s :%d connected, want it refused", tc.what, tc.port)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%s :%d: %v, want connection refused (a RST from the local node)", tc.what, tc.port, err)
		}
	}
	// The allowed connection still carries data both ways.
	if err := echoTCP(c, []byte("still"), 5*time.Second); err != nil {
		t.Errorf("web's container -> db's container :5432 after the denials: %v", err)
	}
	if st := status(t, web).Firewall; st.DeniedOut != 1 {
		t.Errorf("web: %d packets denied out, want 1 (the SYN to :22)", st.DeniedOut)
	}
	if st := status(t, db).Firewall; st.DeniedOut != 2 {
		t.Errorf("db: %d packets denied out, want 2 (the SYNs to web's container)", st.DeniedOut)
	}
}
