//go:build netbench

package bench_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The overlay, the same for every implementation: they run one at a time, so
// iperf3 and ping address the same tunnel endpoints whichever is up.
var (
	overlayA = netip.MustParsePrefix("10.77.0.1/24")
	overlayB = netip.MustParsePrefix("10.77.0.2/24")
)

const (
	listenPort = 51820
	overlayMTU = 1420

	// forwardTimeout bounds how long a fresh pair may take to pass its first
	// ping: process start, TUN creation and one handshake.
	forwardTimeout = 15 * time.Second
)

// A tunnelPair is a running tunnel between the two hosts of a vethPair: one
// daemon per host, each owning one interface. The test that started it stops
// the daemons in its cleanup.
type tunnelPair struct {
	procs  [2]*nstest.Proc // the daemons in A and B
	ifaces [2]string       // their TUN interfaces
	// responder is B's WireGuard public key, which the handshake flood
	// computes MAC1 from; zero for an implementation the flood leaves out.
	responder crypto.PublicKey
	// servesDNS marks a pair whose nodes answer DNS for dnsDomain on their
	// overlay addresses, which the DNS load measures.
	servesDNS bool
}

// An impl is one of the implementations under test, by how its pair starts.
type impl struct {
	name string
	// start brings up a tunnel from overlayA on p.A to overlayB on p.B and
	// returns once a ping passes through it.
	start func(t *testing.T, p *vethPair) *tunnelPair
	// scale times node 0 of sm, with the first nodes of the mesh, from start
	// to its first ping through the tunnel, and returns that time and the
	// node's RSS in bytes once settled (see scale_netbench_test.go); nil
	// for an implementation the scale test leaves out.
	scale func(t *testing.T, p *vethPair, sm *scaleMesh, nodes int) (time.Duration, float64, error)
}

// impls lists the implementations in the order of every round and of the
// table's columns. The first, overlay-node, is the one under test; ratios
// divide its figures by each of the others'. The scale test compares it
// with wireguard-go only: both load their peers as a list of keys, whereas
// Nebula keeps no such list (any host the CA certified may connect, and
// lighthouses say where hosts are).
var impls = [...]impl{
	{name: "overlay-node", start: startOverlayPair, scale: overlayScale},
	{name: "wireguard-go", start: startWireGuardPair, scale: wireGuardScale},
	{name: "nebula", start: startNebulaDefaults},
	{name: "nebula-tuned", start: startNebulaTuned},
}

// zoneTOML turns DNS on in the overlay-node pair's mesh: the domain, no
// upstream (nothing outside the zone is asked), and one service on node b.
// Serving DNS costs the data path nothing; the DNS load measures it.
var zoneTOML = meshExtra{
	keys:   fmt.Sprintf("domain = %q\ndns_upstream = []\n", dnsDomain),
	tables: fmt.Sprintf("\n[[service]]\nname = %q\nnodes = [\"b\"]\nport = 80\nprotocol = \"tcp\"\n", dnsService),
}

// startOverlayPair runs the overlay-node pair with DNS on (zoneTOML).
func startOverlayPair(t *testing.T, p *vethPair) *tunnelPair {
	tp := startOverlayNodes(t, p, zoneTOML)
	tp.servesDNS = true
	return tp
}

// startOverlayNodes writes two fresh keys and a two-node mesh file, nodes a
// and b in groups of their own names, with extra, and runs `overlay-node up`
// in each namespace, as an operator would.
func startOverlayNodes(t *testing.T, p *vethPair, extra meshExtra) *tunnelPair {
	t.Helper()
	dir := t.TempDir()
	keys := [2]crypto.PrivateKey{mustKey(t), mustKey(t)}
	nodes := []meshNode{
		{name: "a", pub: keys[0].PublicKey(), addr: overlayA, endpoint: netip.AddrPortFrom(p.A.Addr, listenPort), group: "a"},
		{name: "b", pub: keys[1].PublicKey(), addr: overlayB, endpoint: netip.AddrPortFrom(p.B.Addr, listenPort), group: "b"},
	}
	mesh := filepath.Join(dir, "mesh.toml")
	if err := writeMesh(mesh, "bench", nodes, extra); err != nil {
		t.Fatal(err)
	}
	var tp tunnelPair
	for i, h := range []*nstest.Host{p.A, p.B} {
		key := filepath.Join(dir, nodes[i].name+".key")
		if err := writeKey(key, keys[i]); err != nil {
			t.Fatal(err)
		}
		tp.procs[i], tp.ifaces[i] = startOverlayNode(t, h, mesh, key)
	}
	if err := waitForward(t.Context(), p.A, overlayB.Addr(), forwardTimeout, tp.procs[:]...); err != nil {
		t.Fatalf("overlay-node pair: %v", err)
	}
	tp.responder = keys[1].PublicKey()
	return &tp
}

// startOverlayNode runs `overlay-node up` in h on an interface name of its
// own: names are global because of /var/run/wireguard/NAME.sock.
func startOverlayNode(t *testing.T, h *nstest.Host, mesh, key string) (*nstest.Proc, string) {
	t.Helper()
	ifname := nstest.UniqueIfName("ovl")
	proc := h.Start(t, nstest.BuildOverlayNode(t), "up", "-c", mesh, "-k", key,
		"--interface", ifname, "--log-level", "warn")
	return proc, ifname
}

// startWireGuardPair runs wireguard-go in each namespace and configures it
// over UAPI the way wg(8) and wg-quick would: key, port, the other side as
// its only peer, then address, MTU and link up.
func startWireGuardPair(t *testing.T, p *vethPair) *tunnelPair {
	t.Helper()
	hosts := [2]*nstest.Host{p.A, p.B}
	addrs := [2]netip.Prefix{overlayA, overlayB}
	keys := [2]crypto.PrivateKey{mustKey(t), mustKey(t)}
	var tp tunnelPair
	for i, h := range hosts {
		w := nstest.StartWireGuardGo(t, h, nstest.UniqueIfName("wg"))
		other := 1 - i
		peer := wgPeer(keys[other].PublicKey(), addrs[other].Addr(), netip.AddrPortFrom(hosts[other].Addr, listenPort))
		if err := w.Configure(wgDevice(keys[i], peer)); err != nil {
			t.Fatal(err)
		}
		wgUp(t, w, addrs[i])
		tp.procs[i], tp.ifaces[i] = w.Proc, w.Name
	}
	if err := waitForward(t.Context(), p.A, overlayB.Addr(), forwardTimeout, tp.procs[:]...); err != nil {
		t.Fatalf("wireguard-go pair: %v", err)
	}
	tp.responder = keys[1].PublicKey()
	return &tp
}

// wgDevice is the UAPI configuration of a device with key, listenPort, and
// exactly peers.
func wgDevice(key crypto.PrivateKey, peers ...wgtypes.PeerConfig) wgtypes.Config {
	k := wgtypes.Key(key)
	port := listenPort
	return wgtypes.Config{PrivateKey: &k, ListenPort: &port, ReplacePeers: true, Peers: peers}
}

// wgPeer is a peer allowed only its overlay address, with an optional
// endpoint (the zero AddrPort for none).
func wgPeer(pub crypto.PublicKey, addr netip.Addr, endpoint netip.AddrPort) wgtypes.PeerConfig {
	pc := wgtypes.PeerConfig{
		PublicKey:         wgtypes.Key(pub),
		ReplaceAllowedIPs: true,
		AllowedIPs:        []net.IPNet{{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())}},
	}
	if endpoint.IsValid() {
		pc.Endpoint = net.UDPAddrFromAddrPort(endpoint)
	}
	return pc
}

// wgUp sets the MTU of w's interface, assigns addr and brings it up.
func wgUp(t *testing.T, w *nstest.WGGo, addr netip.Prefix) {
	t.Helper()
	w.Host.MustExec(t, "ip", "link", "set", "dev", w.Name, "mtu", fmt.Sprint(overlayMTU))
	w.AddAddr(t, addr.String())
}

// waitForward pings dst from h until one echo comes back, for at most limit.
// Each attempt is a ping that sends every 10 ms until the first reply or 1 s;
// an attempt made before the route exists fails at once and is retried 5 ms
// later. So a caller timing it is accurate to about 10 ms plus the start of
// one ping process. It fails early if any of procs exits.
func waitForward(ctx context.Context, h *nstest.Host, dst netip.Addr, limit time.Duration, procs ...*nstest.Proc) error {
	start := time.Now()
	for {
		_, err := run(ctx, h, 3*time.Second, "ping", "-n", "-q", "-c", "1", "-w", "1", "-i", "0.01", dst.String())
		if err == nil {
			return nil
		}
		for _, p := range procs {
			if werr := p.Wait(0); werr != nstest.ErrRunning {
				return fmt.Errorf("%s exited (%v) before %s answered a ping; output:\n%s", p.Name, werr, dst, p.Output())
			}
		}
		if time.Since(start) > limit {
			return fmt.Errorf("no ping reply from %s through the tunnel within %v: %v", dst, limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// A meshNode is one [[node]] of a generated mesh file.
type meshNode struct {
	name     string
	pub      crypto.PublicKey
	addr     netip.Prefix   // the address and the overlay prefix it implies
	endpoint netip.AddrPort // left out of the file when zero
	group    string         // its one group; none when ""
}

// meshExtra is TOML a mesh file carries besides its nodes.
type meshExtra struct {
	keys   string // more keys of the [mesh] table
	tables string // tables after the nodes: [[service]], [[allow]]
}

// writeMesh writes a mesh file named name listing nodes, with extra, in the
// format of the README, buffered because scale tests write 10,000 nodes.
func writeMesh(path, name string, nodes []meshNode, extra meshExtra) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "[mesh]\nname = %q\nport = %d\nmtu = %d\n%s", name, listenPort, overlayMTU, extra.keys)
	for _, n := range nodes {
		fmt.Fprintf(w, "\n[[node]]\nname = %q\npublic_key = %q\naddress = %q\n", n.name, n.pub.String(), n.addr.String())
		if n.endpoint.IsValid() {
			fmt.Fprintf(w, "endpoint = %q\n", n.endpoint.String())
		}
		if n.group != "" {
			fmt.Fprintf(w, "groups = [%q]\n", n.group)
		}
	}
	w.WriteString(extra.tables)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeKey writes k as `overlay-node genkey` would, mode 0600: the daemon
// refuses key files that group or others can read.
func writeKey(path string, k crypto.PrivateKey) error {
	return os.WriteFile(path, []byte(k.Base64()+"\n"), 0o600)
}

// mustKey generates a private key, failing t on error.
func mustKey(t testing.TB) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
