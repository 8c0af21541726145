package tunneltest

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"
)

// TUN is an in-memory tun.Device. Packets given to Inject come out of
// Read as if the kernel routed them into the interface; packets the engine
// Writes are copied to Outbound. Its queues are bounded: Inject blocks when
// the device is not reading, and writes beyond Outbound's capacity are
// dropped and counted in Dropped.
type TUN struct {
	inbound  chan []byte
	Outbound chan []byte
	events   chan tun.Event
	mtu      int
	batch    int

	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	Dropped int

	discard atomic.Bool // Write counts and forgets, for allocation tests
	written atomic.Uint64
}

// SetDiscard makes Write drop packets after counting them, so tests can
// measure the engine's own allocations.
func (t *TUN) SetDiscard(on bool) { t.discard.Store(on) }

// Written returns how many packets Write has accepted.
func (t *TUN) Written() uint64 { return t.written.Load() }

// NewTUN returns a TUN with the given MTU and batch size.
func NewTUN(mtu, batch int) *TUN {
	return &TUN{
		inbound:  make(chan []byte, 1024),
		Outbound: make(chan []byte, 4096),
		events:   make(chan tun.Event),
		mtu:      mtu,
		batch:    batch,
		done:     make(chan struct{}),
	}
}

// Inject queues a copy of pkt for the engine to read.
func (t *TUN) Inject(pkt []byte) {
	select {
	case t.inbound <- append([]byte(nil), pkt...):
	case <-t.done:
	}
}

// File returns nil: there is no descriptor.
func (t *TUN) File() *os.File { return nil }

// Read fills bufs with up to len(bufs) queued packets at offset, blocking
// for the first one.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	var pkt []byte
	select {
	case pkt = <-t.inbound:
	case <-t.done:
		return 0, os.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case pkt = <-t.inbound:
		default:
			return n, nil
		}
	}
}

// Write copies each bufs[i][offset:] to Outbound, unless discarding.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	t.written.Add(uint64(len(bufs)))
	if t.discard.Load() {
		return len(bufs), nil
	}
	for _, b := range bufs {
		select {
		case t.Outbound <- append([]byte(nil), b[offset:]...):
		default:
			t.mu.Lock()
			t.Dropped++
			t.mu.Unlock()
		}
	}
	return len(bufs), nil
}

// MTU returns the configured MTU.
func (t *TUN) MTU() (int, error) { return t.mtu, nil }

// Name returns a fixed name.
func (t *TUN) Name() (string, error) { return "faketun", nil }

// Events returns a channel that never fires before Close.
func (t *TUN) Events() <-chan tun.Event { return t.events }

// Close unblocks Read and Inject.
func (t *TUN) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.done)
		close(t.events)
	}
	return nil
}

// BatchSize returns the batch size given to NewTUN.
func (t *TUN) BatchSize() int { return t.batch }

var _ tun.Device = (*TUN)(nil)
