package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// stormReloads is how many SIGHUPs the reload storm sends.
const stormReloads = 100

// 100 reloads during a 256 MiB transfer, each one adding or removing a
// subnet of the peer: the stream arrives byte-exact, the session is the
// one from before (its handshake time is unchanged), and the node ends
// with the goroutines and descriptors it started with.
func TestReloadStormDuringTransfer(t *testing.T) {
	m, a, b := obsPair(t)
	transfer(t, a.host, b.host, b.addr.Addr(), 1<<20) // warm up
	hsBefore := latestHandshake(t, a, "b")
	goBefore, fdBefore := goroutines(t, a), openFDs(t, a.proc.PID())

	done := make(chan struct{})
	var sent, got [32]byte
	var terr error
	go func() {
		defer close(done)
		sent, got, terr = nstest.Transfer(t, a.host, b.host, b.addr.Addr().String(), 256<<20)
	}()
	var during int
	for i := 0; i < stormReloads; i++ {
		if i%2 == 0 {
			b.subnets = []netip.Prefix{netip.MustParsePrefix("10.231.9.0/24")}
		} else {
			b.subnets = nil
		}
		m.write(m.nodes)
		if err := a.proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// Each reload is awaited, so that none is lost to signal
		// coalescing, and polled often, so that the storm fits in the
		// transfer.
		for deadline := time.Now().Add(10 * time.Second); strings.Count(a.proc.Output(), "mesh file reloaded") < i+1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d not done after 10s:\n%s", i+1, a.proc.Output())
			}
		}
		select {
		case <-done:
		default:
			during++
		}
	}
	<-done
	if terr != nil {
		t.Fatal(terr)
	}
	if sent != got {
		t.Fatalf("256 MiB transfer during the storm: sha256 sent %x, received %x", sent, got)
	}
	t.Logf("%d of %d reloads finished while the 256 MiB transfer ran", during, stormReloads)
	if strings.Contains(a.proc.Output(), "reload failed") {
		t.Errorf("a reload failed:\n%s", a.proc.Output())
	}
	if hs := latestHandshake(t, a, "b"); !hs.Equal(hsBefore) {
		t.Errorf("handshake time changed from %v to %v: the storm cost the session", hsBefore, hs)
	}
	// The transfer's connections are gone; allow the scrape's own.
	goAfter, fdAfter := goroutines(t, a), openFDs(t, a.proc.PID())
	t.Logf("goroutines %d -> %d, open fds %d -> %d", goBefore, goAfter, fdBefore, fdAfter)
	if goAfter > goBefore+2 {
		t.Errorf("goroutines grew from %d to %d over %d reloads", goBefore, goAfter, stormReloads)
	}
	if fdAfter > fdBefore+2 {
		t.Errorf("open fds grew from %d to %d over %d reloads", fdBefore, fdAfter, stormReloads)
	}
}

// goroutines reads go_goroutines from n's metrics.
func goroutines(t *testing.T, n *meshNode) int {
	t.Helper()
	v, ok := obsSamples(t, obsScrape(t, n))["go_goroutines"]
	if !ok {
		t.Fatal("no go_goroutines in the metrics")
	}
	return int(v)
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// latestHandshake is when n's session with peer was made.
func latestHandshake(t *testing.T, n *meshNode, peer string) time.Time {
	t.Helper()
	hs := peerStatus(t, status(t, n), peer).LatestHandshake
	if hs == nil {
		t.Fatalf("node %s: no handshake with %s", n.name, peer)
	}
	return *hs
}
