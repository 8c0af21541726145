package tunnel

import (
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Busy polling. Most of the latency a tunnel adds on an idle host is the
// wake-up of idle CPUs: on the 2-core test VM, tunnel RTT fell from about
// 280 µs to 70 µs when a low-priority spinner kept both vCPUs from halting
// (docs/datapath.md). So after each batch the poller keeps its core busy
// for a window, polling the TUN and UDP descriptors itself, and a reply
// that arrives within the window is picked up at once.
//
// Spinning costs CPU, so it is budgeted: at most busyPollBudget of each
// second. Interactive traffic (a request, then its reply) stays well inside
// it; steady traffic exhausts it within the second, and then the packet
// paths simply block as they would without polling, where batches keep
// them busy anyway.

// busyPollBudget is the share of each second the poller may spin.
const busyPollBudget = 100 * time.Millisecond

type busyPoller struct {
	fds    []unix.PollFd
	window int64 // nanoseconds
	until  atomic.Int64
	wake   chan struct{}
	done   chan struct{}

	// Owned by run.
	period int64 // start of the current second, Unix nanoseconds
	spent  int64 // nanoseconds spun in it
}

func newBusyPoller(fds []int, window time.Duration) *busyPoller {
	b := &busyPoller{window: int64(window), wake: make(chan struct{}, 1), done: make(chan struct{})}
	for _, fd := range fds {
		b.fds = append(b.fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	return b
}

// activity opens (or extends) the polling window. A nil poller does
// nothing, so the packet paths need no check.
func (b *busyPoller) activity() {
	if b == nil {
		return
	}
	b.until.Store(time.Now().UnixNano() + b.window)
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *busyPoller) stop() { close(b.done) }

func (b *busyPoller) run() {
	for {
		select {
		case <-b.wake:
		case <-b.done:
			return
		}
		start := time.Now().UnixNano()
		if !b.allow(start) {
			continue
		}
		now := start
		for now < b.until.Load() && b.spent+now-start < int64(busyPollBudget) {
			if n, _ := unix.Poll(b.fds, 0); n > 0 {
				// A reader has work: park for a moment, which makes
				// the scheduler poll the network and run it.
				time.Sleep(time.Microsecond)
			} else {
				runtime.Gosched()
			}
			now = time.Now().UnixNano()
		}
		b.spent += now - start
	}
}

// allow reports whether the budget of the second now falls in has room.
func (b *busyPoller) allow(now int64) bool {
	if now-b.period >= int64(time.Second) {
		b.period, b.spent = now, 0
	}
	return b.spent < int64(busyPollBudget)
}

// pollFDs returns the TUN and UDP descriptors, or nil when either is not
// a kernel descriptor (the in-memory fakes of tests).
func (d *Device) pollFDs() []int {
	f, _ := vnetFile(d.tun)
	b, ok := d.bind.(interface{ FDs() []int })
	if f == nil || !ok {
		return nil
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var fds []int
	raw.Control(func(fd uintptr) { fds = append(fds, int(fd)) })
	return append(fds, b.FDs()...)
}
