//go:build netbench

package bench_test

// The scale test: how long a node takes from start to forwarding, and how much
// memory it holds per peer, when the mesh lists thousands of nodes of which
// only one is real. Node 0 runs in A and is measured; node 1 runs in B with a
// two-node view of the same mesh (the same keys and addresses), so B's work
// is the same whatever A's mesh holds; every other node is idle, with an
// address and no endpoint, as a peer behind NAT that has not called in yet.
//
// Each round measures each implementation twice, with 1 peer and with the
// whole mesh, and derives the memory per idle peer from the difference.
// Failures here are reported in the results rather than failing the run: a
// daemon that is slow to start with a big mesh is a finding, not a harness
// error.

import (
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// scalePrefix holds the scale mesh's addresses: node i has the (i+1)th
// address, with the prefix length, so that every node implies the same
// overlay route.
var scalePrefix = netip.MustParsePrefix("10.64.0.0/10")

const (
	// scaleUpTimeout bounds one start-to-forwarding measurement.
	scaleUpTimeout = 60 * time.Second
	// settle is how long a node idles after its first ping before its RSS
	// is read. overlay-node frees its start-up garbage itself once up;
	// this gives wireguard-go's runtime the time to collect its own.
	settle = 2 * time.Second
)

// scaleMesh is the generated mesh and the files that describe it.
type scaleMesh struct {
	keys  [2]crypto.PrivateKey // nodes 0 (A) and 1 (B)
	nodes []meshNode
	small string // mesh file with nodes 0 and 1 only
	big   string // mesh file with every node
	dir   string // holds the mesh and key files
}

// newScaleMesh generates n keys and writes both mesh files and the key files
// of nodes 0 and 1 into a temporary directory.
func newScaleMesh(t *testing.T, p *vethPair, n int) *scaleMesh {
	t.Helper()
	start := time.Now()
	sm := &scaleMesh{nodes: make([]meshNode, n), dir: t.TempDir()}
	addr := scalePrefix.Addr()
	for i := range sm.nodes {
		k := mustKey(t)
		if i < len(sm.keys) {
			sm.keys[i] = k
		}
		addr = addr.Next()
		sm.nodes[i] = meshNode{name: fmt.Sprintf("n%d", i), pub: k.PublicKey(), addr: netip.PrefixFrom(addr, scalePrefix.Bits())}
	}
	sm.nodes[0].endpoint = netip.AddrPortFrom(p.A.Addr, listenPort)
	sm.nodes[1].endpoint = netip.AddrPortFrom(p.B.Addr, listenPort)
	sm.small = filepath.Join(sm.dir, "mesh-2.toml")
	sm.big = filepath.Join(sm.dir, fmt.Sprintf("mesh-%d.toml", n))
	for _, err := range []error{
		writeMesh(sm.small, "scale", sm.nodes[:2], meshExtra{}),
		writeMesh(sm.big, "scale", sm.nodes, meshExtra{}),
		writeKey(sm.keyFile(0), sm.keys[0]),
		writeKey(sm.keyFile(1), sm.keys[1]),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("generated %d keys and the mesh files in %v", n, time.Since(start).Round(time.Millisecond))
	return sm
}

func (sm *scaleMesh) keyFile(i int) string { return filepath.Join(sm.dir, fmt.Sprintf("n%d.key", i)) }

// runScale runs s.rounds rounds, each measuring overlay-node and then
// wireguard-go (the implementations with a scale function) with 1 peer and
// with the whole mesh, into res.
func runScale(t *testing.T, p *vethPair, s settings, res *results) {
	sm := newScaleMesh(t, p, s.peers)
	for round := 1; round <= s.rounds; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			for i, im := range impls {
				if im.scale == nil {
					continue
				}
				smp := sample{}
				for _, n := range []int{2, s.peers} {
					upKey, rssKey := mUpN, mRSSN
					if n == 2 {
						upKey, rssKey = mUp1, mRSS1
					}
					t.Run(fmt.Sprintf("%s-%d-nodes", im.name, n), func(t *testing.T) {
						res.runs++
						up, rss, err := im.scale(t, p, sm, n)
						if err != nil {
							t.Logf("%v", err)
							res.note("scale, round %d, %s with a %d-node mesh: %s", round, im.name, n, firstLine(err))
							smp[upKey], smp[rssKey] = math.NaN(), math.NaN()
							return
						}
						t.Logf("start to first ping %v, RSS %.1f MiB", up.Round(time.Millisecond), rss/(1<<20))
						smp[upKey], smp[rssKey] = up.Seconds(), rss/(1<<20)
					})
				}
				rssN, okN := smp[mRSSN]
				rss1, ok1 := smp[mRSS1]
				if okN && ok1 {
					smp[mRSSPerPeer] = (rssN - rss1) * 1024 / float64(s.peers-2)
				}
				res.add(i, smp)
			}
		})
	}
}

// overlayScale starts node 1 in B on the two-node mesh, then times node 0 in
// A on the first nodes of the mesh (the big file or the small one) from
// `overlay-node up` to its first ping through the tunnel. It returns that
// time and node 0's RSS after settling.
func overlayScale(t *testing.T, p *vethPair, sm *scaleMesh, nodes int) (time.Duration, float64, error) {
	procB, _ := startOverlayNode(t, p.B, sm.small, sm.keyFile(1))
	if err := waitUDPListen(t, p.B, procB); err != nil {
		return 0, 0, err
	}
	mesh := sm.small
	if nodes > 2 {
		mesh = sm.big
	}
	start := time.Now()
	procA, _ := startOverlayNode(t, p.A, mesh, sm.keyFile(0))
	if err := waitForward(t.Context(), p.A, sm.nodes[1].addr.Addr(), scaleUpTimeout, procA, procB); err != nil {
		return 0, 0, err
	}
	return settleRSS(time.Since(start), procA)
}

// wireGuardScale starts wireguard-go in B with node 0 as its peer, and
// wireguard-go in A, addressed and up but without keys or peers; then it
// times A's UAPI configuration with the first nodes of the mesh, over wgctrl,
// until its first ping through the tunnel. The process start is not timed,
// which favours wireguard-go slightly: it takes a few milliseconds.
func wireGuardScale(t *testing.T, p *vethPair, sm *scaleMesh, nodes int) (time.Duration, float64, error) {
	wb := nstest.StartWireGuardGo(t, p.B, nstest.UniqueIfName("wg"))
	n0 := sm.nodes[0]
	if err := wb.Configure(wgDevice(sm.keys[1], wgPeer(n0.pub, n0.addr.Addr(), n0.endpoint))); err != nil {
		return 0, 0, err
	}
	wgUp(t, wb, sm.nodes[1].addr)
	wa := nstest.StartWireGuardGo(t, p.A, nstest.UniqueIfName("wg"))
	wgUp(t, wa, n0.addr)
	peers := make([]wgtypes.PeerConfig, 0, nodes-1)
	for _, n := range sm.nodes[1:nodes] {
		peers = append(peers, wgPeer(n.pub, n.addr.Addr(), n.endpoint))
	}

	start := time.Now()
	if err := wa.Configure(wgDevice(sm.keys[0], peers...)); err != nil {
		return 0, 0, err
	}
	configured := time.Since(start)
	if err := waitForward(t.Context(), p.A, sm.nodes[1].addr.Addr(), scaleUpTimeout, wa.Proc, wb.Proc); err != nil {
		return 0, 0, err
	}
	up := time.Since(start)
	t.Logf("UAPI configuration of %d peers took %v", len(peers), configured.Round(time.Millisecond))
	return settleRSS(up, wa.Proc)
}

// settleRSS waits for the node to settle and returns up with its RSS.
func settleRSS(up time.Duration, proc *nstest.Proc) (time.Duration, float64, error) {
	time.Sleep(settle)
	rss, err := rssBytes(proc.PID())
	return up, rss, err
}

// waitUDPListen waits up to 10 s for a UDP socket on listenPort in h, which
// overlay-node opens last, once its interface, addresses and routes are set.
func waitUDPListen(t *testing.T, h *nstest.Host, proc *nstest.Proc) error {
	port := fmt.Sprint(listenPort)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := run(t.Context(), h, 2*time.Second, "ss", "-Hlun", "sport", "=", ":"+port)
		if err == nil && strings.Contains(out, port) {
			return nil
		}
		if werr := proc.Wait(20 * time.Millisecond); werr != nstest.ErrRunning {
			return fmt.Errorf("%s in %s exited (%v); output:\n%s", proc.Name, h.Name, werr, proc.Output())
		}
	}
	return fmt.Errorf("%s in %s: no UDP socket on port %s after 10s", proc.Name, h.Name, port)
}

// firstLine returns the first line of err's message, for one-line notes.
func firstLine(err error) string {
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}
