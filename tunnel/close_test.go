package tunnel

import (
	"runtime"
	"strings"
	"sync"
	"testing"
)

// goroutineIn reports whether any goroutine's stack has a frame whose name
// contains fn.
func goroutineIn(fn string) bool {
	buf := make([]byte, 1<<20)
	return strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn)
}

// Close must join the goroutine requestHandshake starts: one left running
// would send on a closed bind and outlive the device.
func TestCloseJoinsInitiations(t *testing.T) {
	a, _ := newPair(t, nil)
	p := a.dev.Peers()[0]
	// Hold the initiation goroutine at its first lock of the peer.
	p.mu.Lock()
	release := sync.OnceFunc(p.mu.Unlock)
	t.Cleanup(release) // runs before newPair's Close
	p.requestHandshake()
	if !p.initiating.Load() {
		t.Fatal("requestHandshake started no initiation")
	}

	closed := make(chan struct{})
	go func() {
		a.dev.Close()
		close(closed)
	}()
	waitFor(t, "Close to wait for the initiation", func() bool {
		select {
		case <-closed:
			t.Fatal("Close returned while an initiation goroutine was still running")
		default:
		}
		return goroutineIn("(*Device).stopInitiations")
	})
	release()
	<-closed
	if p.initiating.Load() {
		t.Error("initiation still running after Close returned")
	}

	// After Close, the packet path starts no initiation.
	p.requestHandshake()
	if p.initiating.Load() {
		t.Error("requestHandshake after Close started an initiation")
	}
}
