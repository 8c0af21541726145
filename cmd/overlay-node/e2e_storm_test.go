package main

import (
	"fmt"
	"io"
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
// with the goroutines and descriptors it started with. The transfer is
// let through a slice at a time, one per finished reload, so that every
// reload happens while it runs however fast it would be.
func TestReloadStormDuringTransfer(t *testing.T) {
	const size = 256 << 20
	m, a, b := obsPair(t)
	transfer(t, a.host, b.host, b.addr.Addr(), 1<<20) // warm up
	hsBefore := latestHandshake(t, a, "b")
	goBefore, fdBefore := goroutines(t, a), openFDs(t, a.proc.PID())

	gate := &gatedReader{grants: make(chan int64, stormReloads+1)}
	slice := int64(size / (stormReloads + 1))
	gate.grants <- slice
	released := false // a failing test lets the sender go, too
	defer func() {
		if !released {
			close(gate.grants)
		}
	}()
	done := make(chan struct{})
	var sent, got [32]byte
	var terr error
	go func() {
		defer close(done)
		sent, got, terr = nstest.TransferPaced(t, a.host, b.host, b.addr.Addr().String(), size,
			func(r io.Reader) io.Reader { gate.r = r; return gate })
	}()
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
		// coalescing.
		for deadline := time.Now().Add(10 * time.Second); strings.Count(a.proc.Output(), "mesh file reloaded") < i+1; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("reload %d not done after 10s:\n%s", i+1, a.proc.Output())
			}
		}
		select {
		case <-done:
			t.Fatalf("the transfer ended before reload %d: %v", i+1, terr)
		default:
		}
		if i < stormReloads-1 {
			gate.grants <- slice
		}
	}
	close(gate.grants) // the rest of the stream
	released = true
	<-done
	if terr != nil {
		t.Fatal(terr)
	}
	if sent != got {
		t.Fatalf("256 MiB transfer during the storm: sha256 sent %x, received %x", sent, got)
	}
	t.Logf("all %d reloads finished while the 256 MiB transfer ran", stormReloads)
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

// A gatedReader reads from r no more than it has been granted; a closed
// grants lifts the limit.
type gatedReader struct {
	r      io.Reader
	grants chan int64
	left   int64
	open   bool
}

func (g *gatedReader) Read(p []byte) (int, error) {
	for !g.open && g.left == 0 {
		n, ok := <-g.grants
		g.left += n
		g.open = !ok
	}
	if !g.open {
		p = p[:min(int64(len(p)), g.left)]
	}
	n, err := g.r.Read(p)
	g.left -= int64(n)
	return n, err
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
