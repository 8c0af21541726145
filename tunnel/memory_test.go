package tunnel

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/encap/encaptest"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// An idle peer costs little: handshake state, timers and buffers are made
// only when a peer becomes active. 10,000 idle peers must fit the budget.
func TestIdlePeerHeap(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a 10,000-peer device; heap figures are off under the race detector")
	}
	// Measure in a fresh process: the garbage other tests leave behind
	// (each device owns megabytes of batch buffers) would swamp the figure.
	if os.Getenv("TUNNEL_HEAP_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdlePeerHeap$", "-test.v")
		cmd.Env = append(os.Environ(), "TUNNEL_HEAP_CHILD=1")
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	const n, budget = 10000, 1024 // bytes of Go heap per idle peer
	peers := make([]PeerConfig, n)
	for i := range peers {
		peers[i] = PeerConfig{
			Name:       fmt.Sprintf("node-%d", i),
			PublicKey:  mustKey(t).PublicKey(),
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 64, byte(i >> 8), byte(i)}), 32)},
			Endpoint:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)}), 51820),
		}
	}
	bind, _ := encaptest.NewPair()
	d, err := New(tunneltest.NewTUN(1420, encap.BatchSize), bind, Config{PrivateKey: mustKey(t), Peers: peers}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Measure by freeing: the heap with the device, then without it, so
	// garbage left by earlier tests does not count.
	var with, without runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&with)
	runtime.KeepAlive(d)
	d = nil
	runtime.GC()
	runtime.ReadMemStats(&without)
	runtime.KeepAlive(peers)
	perPeer := int64(with.HeapAlloc-without.HeapAlloc) / n
	t.Logf("%d B of heap per idle peer", perPeer)
	if perPeer > budget {
		t.Errorf("got %d B of heap per idle peer, want at most %d", perPeer, budget)
	}
}
