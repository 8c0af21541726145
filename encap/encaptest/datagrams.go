package encaptest

import (
	"fmt"
	"net"
	"net/netip"

	"golang.zx2c4.com/wireguard/conn"
)

// Endpoint is an address on the in-memory network; it implements
// conn.Endpoint. It is a comparable value, so tests can check which endpoint
// the engine replied to with ==.
type Endpoint struct {
	netip.AddrPort
}

var _ conn.Endpoint = Endpoint{}

// ClearSrc does nothing: there is no sticky source address to forget.
func (Endpoint) ClearSrc() {}

// SrcToString returns "", as there is no local source address.
func (Endpoint) SrcToString() string { return "" }

// DstToString returns the address as ip:port.
func (e Endpoint) DstToString() string { return e.AddrPort.String() }

// DstToBytes returns the address in the same form as the standard bind's
// endpoints (the IP bytes, then the port), so cookie MACs computed in tests
// are bound to the same bytes as in production.
func (e Endpoint) DstToBytes() []byte {
	b, _ := e.AddrPort.MarshalBinary()
	return b
}

// DstIP returns the IP of the address.
func (e Endpoint) DstIP() netip.Addr { return e.Addr() }

// SrcIP returns the zero Addr, as there is no local source address.
func (Endpoint) SrcIP() netip.Addr { return netip.Addr{} }

// Send copies each datagram in bufs (at most BatchSize of them) to the side
// listening at ep, which is the peer when ep is the peer's Addr. A datagram to
// any other address, or to a peer that is closed, is dropped and counted as
// Unroutable; one that finds the peer's queue full is dropped and counted as
// the peer's Overflow. Neither is an error, because neither is for UDP. Send
// fails with net.ErrClosed while this side is closed, and with
// conn.ErrWrongEndpointType for an endpoint this package did not make.
func (b *Bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	var dst netip.AddrPort
	switch e := ep.(type) {
	case Endpoint:
		dst = e.AddrPort
	case *Endpoint:
		dst = e.AddrPort
	default:
		return conn.ErrWrongEndpointType
	}

	b.mu.Lock()
	s, tap := b.sess, b.tap
	if s == nil {
		b.mu.Unlock()
		return net.ErrClosed
	}
	if len(bufs) > b.batchSize {
		n := b.batchSize
		b.mu.Unlock()
		return fmt.Errorf("encaptest: send of %d datagrams exceeds batch size %d", len(bufs), n)
	}
	b.sent.Add(uint64(len(bufs)))
	if b.discard.Load() {
		b.mu.Unlock()
		return nil
	}
	pkts := make([][]byte, len(bufs))
	for i, buf := range bufs {
		pkts[i] = clone(buf)
	}
	pkts = b.impairLocked(pkts)
	b.mu.Unlock()

	// The tap runs before delivery, so a test that records a datagram has
	// it before the peer can react to it.
	if tap != nil {
		for _, buf := range bufs {
			tap(clone(buf), ep)
		}
	}
	if !b.peer.deliver(pkts, s.self, dst) {
		b.unroutable.Add(uint64(len(pkts)))
	}
	return nil
}

// Inject queues a copy of pkt for this side's ReceiveFunc as if it had
// arrived from `from` (the peer's address if from is nil). It bypasses the
// Impairment and the tap: it is how a test replays a recorded datagram or
// feeds hand-made bytes to the engine. It fails with net.ErrClosed while the
// side is closed and with ErrQueueFull, counted as Overflow, when the queue
// has no room.
func (b *Bind) Inject(pkt []byte, from conn.Endpoint) error {
	if from == nil {
		from = b.peer.Endpoint()
	}
	b.mu.Lock()
	s := b.sess
	b.mu.Unlock()
	if s == nil {
		return net.ErrClosed
	}
	select {
	case s.queue <- datagram{data: clone(pkt), from: from}:
		b.injected.Add(1)
		return nil
	default:
		b.overflow.Add(1)
		return ErrQueueFull
	}
}

// deliver queues pkts from `from` if this side is open at to, and reports
// whether it is. It never blocks: a full queue drops, as a socket buffer
// does, so a stalled receiver cannot stall its peer's sender.
func (b *Bind) deliver(pkts [][]byte, from conn.Endpoint, to netip.AddrPort) bool {
	b.mu.Lock()
	s := b.sess
	b.mu.Unlock()
	if s == nil || s.addr != to {
		return false
	}
	for _, p := range pkts {
		select {
		case s.queue <- datagram{data: p, from: from}:
		default:
			b.overflow.Add(1)
		}
	}
	return true
}

// impairLocked applies the Impairment to one batch. It needs b.mu because
// the generator is not safe for concurrent use.
func (b *Bind) impairLocked(pkts [][]byte) [][]byte {
	if b.rng == nil {
		return pkts
	}
	kept := pkts[:0]
	for _, p := range pkts {
		if b.rng.Float64() < b.im.Loss {
			b.lost.Add(1)
			continue
		}
		kept = append(kept, p)
	}
	for i := 0; i+1 < len(kept); i++ {
		if b.rng.Float64() < b.im.Reorder {
			kept[i], kept[i+1] = kept[i+1], kept[i]
			i++ // the moved datagram does not move again
		}
	}
	out := kept
	if b.im.Duplicate > 0 {
		out = make([][]byte, 0, 2*len(kept))
		for _, p := range kept {
			out = append(out, p)
			if b.rng.Float64() < b.im.Duplicate {
				out = append(out, p) // receivers only read datagrams, so sharing is safe
			}
		}
	}
	return out
}

// receiveFunc returns the ReceiveFunc of session s. It blocks for the first
// datagram, then takes whatever else is already queued, up to len(bufs), so
// that a burst arrives as one batch, as with recvmmsg. A datagram longer than
// its buffer is truncated to it, as UDP truncates.
func (b *Bind) receiveFunc(s *session, batch int) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if len(bufs) == 0 || len(bufs) > batch || len(sizes) < len(bufs) || len(eps) < len(bufs) {
			return 0, fmt.Errorf("encaptest: receive with %d buffers, %d sizes and %d endpoints, batch size %d",
				len(bufs), len(sizes), len(eps), batch)
		}
		// Check done first: with both channels ready select picks at
		// random, and a call after Close must fail.
		select {
		case <-s.done:
			return 0, net.ErrClosed
		default:
		}
		var d datagram
		select {
		case <-s.done:
			return 0, net.ErrClosed
		case d = <-s.queue:
		}
		n := 0
		for n < len(bufs) {
			if n > 0 {
				select {
				case d = <-s.queue:
				default:
					b.received.Add(uint64(n))
					return n, nil
				}
			}
			sizes[n] = copy(bufs[n], d.data)
			eps[n] = d.from
			n++
		}
		b.received.Add(uint64(n))
		return n, nil
	}
}

// clone copies p into memory of its own, keeping an empty datagram non-nil.
func clone(p []byte) []byte {
	c := make([]byte, len(p))
	copy(c, p)
	return c
}
