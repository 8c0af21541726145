// Package encaptest provides an in-memory pair of UDP binds for tests of the
// engine: what one side sends, the other receives, in batches, with no
// sockets and no privileges. A test can also watch everything a side sends
// (to record a real transport message and replay it later), deliver arbitrary
// bytes to a side as if they came from any address, and make the link lose,
// duplicate or reorder datagrams, deterministically from a seed.
//
// Each side has a fixed IPv4 address (127.0.0.1 for the first, 127.0.0.2 for
// the second) and a port, DefaultPort unless Open is given another, so the
// addresses a test configures, the source addresses cookie MACs are bound to,
// and the addresses the engine learns are all stable across runs.
//
// The receiving side coalesces queued datagrams into trains as the kernel's
// UDP GRO does, so unit tests exercise the engine's GRO path; [Bind.SetGRO]
// turns that off.
package encaptest

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/overlay-node/overlay-node/encap"
)

// Defaults of a new pair.
const (
	// DefaultPort is the port a side listens on when Open is given 0.
	DefaultPort = 51820

	// DefaultQueueLen is how many datagrams a side buffers for its
	// ReceiveFunc before it drops. It is large enough for several full
	// batches, so that only a receiver that stops reading loses datagrams.
	DefaultQueueLen = 1024
)

// ErrQueueFull is returned by Inject when the receiving side's queue is full;
// datagrams from Send are dropped silently instead, as UDP would.
var ErrQueueFull = errors.New("encaptest: receive queue full")

// ErrAlreadyOpen is returned by Open on a side that is open.
var ErrAlreadyOpen = errors.New("encaptest: bind already open")

// Impairment describes how unreliable the link out of one side is. Each
// probability is in [0, 1] and applies to each datagram independently. The
// zero value is a perfect link.
type Impairment struct {
	Loss      float64 // probability that a datagram is dropped
	Duplicate float64 // probability that a delivered datagram arrives twice
	// Reorder is the probability that a datagram swaps places with the one
	// after it in the same Send batch. Reordering stays within a batch so
	// that no datagram is ever held back waiting for a later Send.
	Reorder float64
	Seed    uint64 // seeds the generator, so a failing run can be repeated
}

// Stats counts what happened to datagrams at one side. Drops are counted
// where they happen: Lost and Unroutable at the sender, Overflow at the
// receiver whose queue was full.
type Stats struct {
	Sent       uint64 // datagrams passed to Send
	Lost       uint64 // dropped by the Impairment
	Unroutable uint64 // sent to an address where the peer is not listening
	Injected   uint64 // datagrams queued by Inject
	Overflow   uint64 // dropped on arrival because the queue was full
	Received   uint64 // datagrams returned by the ReceiveFunc, not messages
}

// Bind is one side of an in-memory pair; it implements encap.Bind. Datagrams
// sent to the other side's address are copied into the other side's queue,
// those sent anywhere else are dropped and counted. The methods are safe for
// concurrent use.
type Bind struct {
	peer *Bind // immutable after NewPair
	ip   netip.Addr

	mu        sync.Mutex
	sess      *session // nil while closed
	port      uint16   // last port opened, DefaultPort before that
	batchSize int
	queueLen  int
	tap       func(pkt []byte, to netip.AddrPort)
	im        Impairment
	rng       *rand.Rand // nil for a perfect link

	sent, lost, unroutable, injected, overflow, received atomic.Uint64
	discard, noGRO                                       atomic.Bool
}

// SetDiscard makes Send count datagrams as sent and forget them, without
// copying, so tests can measure the sender's own allocations.
func (b *Bind) SetDiscard(on bool) { b.discard.Store(on) }

// SetGRO turns the coalescing of received datagrams into trains on (the
// default) or off, from the next receive on. Off, every message is one
// datagram, as from a kernel without UDP GRO.
func (b *Bind) SetGRO(on bool) { b.noGRO.Store(!on) }

// session is the state of one Open..Close period. ReceiveFuncs capture their
// session, so that those of an earlier Open keep returning net.ErrClosed
// after the bind is opened again.
type session struct {
	addr  netip.AddrPort
	done  chan struct{} // closed by Close
	ready chan struct{} // holds a token when the queue may have become non-empty

	// The queue is a slice rather than a channel because GRO must look at
	// the next datagram before deciding to take it.
	mu       sync.Mutex
	queue    []datagram
	queueLen int
}

type datagram struct {
	data []byte
	from netip.AddrPort
}

var _ encap.Bind = (*Bind)(nil)

// NewPair returns two connected binds, at 127.0.0.1 and 127.0.0.2. Both are
// closed; open them as the engine would.
func NewPair() (*Bind, *Bind) {
	a := &Bind{ip: netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	b := &Bind{ip: netip.AddrFrom4([4]byte{127, 0, 0, 2})}
	for _, x := range []*Bind{a, b} {
		x.port = DefaultPort
		x.batchSize = encap.BatchSize
		x.queueLen = DefaultQueueLen
	}
	a.peer, b.peer = b, a
	return a, b
}

// Addr returns the address the side listens on while open, and the address
// its datagrams come from: its fixed IP and the port it was last opened with
// (DefaultPort before the first Open).
func (b *Bind) Addr() netip.AddrPort {
	b.mu.Lock()
	defer b.mu.Unlock()
	return netip.AddrPortFrom(b.ip, b.port)
}

// SetBatchSize changes the batch size reported by BatchSize, so tests can run
// the engine's single-datagram path. Call it before the engine opens the bind.
func (b *Bind) SetBatchSize(n int) {
	if n < 1 {
		panic("encaptest: batch size must be positive")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batchSize = n
}

// SetQueueLen changes the receive queue length from the next Open on.
func (b *Bind) SetQueueLen(n int) {
	if n < 1 {
		panic("encaptest: queue length must be positive")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queueLen = n
}

// SetTap installs fn to be called, synchronously inside Send, with a copy of
// every datagram this side sends and its destination, before any Impairment
// applies: the tap sees what the engine put on the wire. fn owns the copy.
// nil removes the tap.
func (b *Bind) SetTap(fn func(pkt []byte, to netip.AddrPort)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tap = fn
}

// SetImpairment makes the link out of this side unreliable as im describes;
// the zero Impairment restores a perfect link.
func (b *Bind) SetImpairment(im Impairment) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.im = im
	b.rng = nil
	if im != (Impairment{}) {
		b.rng = rand.New(rand.NewPCG(im.Seed, im.Seed^0x9e3779b97f4a7c15))
	}
}

// Stats returns a snapshot of the side's counters.
func (b *Bind) Stats() Stats {
	return Stats{
		Sent:       b.sent.Load(),
		Lost:       b.lost.Load(),
		Unroutable: b.unroutable.Load(),
		Injected:   b.injected.Load(),
		Overflow:   b.overflow.Load(),
		Received:   b.received.Load(),
	}
}

// Open starts listening on port, or on DefaultPort if port is 0, and returns
// a single ReceiveFunc, which gets datagrams from any address, such as the
// IPv6 ones a test injects. Datagrams that arrived while the side was closed
// are gone, as they would be for a socket.
func (b *Bind) Open(port uint16) ([]encap.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess != nil {
		return nil, 0, ErrAlreadyOpen
	}
	if port == 0 {
		port = DefaultPort
	}
	b.port = port
	s := &session{
		addr:     netip.AddrPortFrom(b.ip, port),
		done:     make(chan struct{}),
		ready:    make(chan struct{}, 1),
		queueLen: b.queueLen,
	}
	b.sess = s
	return []encap.ReceiveFunc{b.receiveFunc(s, b.batchSize)}, port, nil
}

// Close stops listening: every ReceiveFunc returns net.ErrClosed from then
// on, queued datagrams are discarded, and Send fails until the next Open.
// Closing a closed side does nothing.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess != nil {
		close(b.sess.done)
		b.sess = nil
	}
	return nil
}

// BatchSize returns the batch size, encap.BatchSize unless SetBatchSize
// changed it.
func (b *Bind) BatchSize() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.batchSize
}
