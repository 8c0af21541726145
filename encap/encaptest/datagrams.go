package encaptest

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/overlay-node/overlay-node/encap"
)

// Send copies each datagram in pkts (at most BatchSize of them) to the side
// listening at to, which is the peer when to is the peer's Addr. A datagram to
// any other address, an invalid one included, or to a peer that is closed, is
// dropped and counted as Unroutable; one that finds the peer's queue full is
// dropped and counted as the peer's Overflow. Neither is an error, because
// neither is for UDP. Send fails with net.ErrClosed while this side is
// closed.
func (b *Bind) Send(pkts [][]byte, to netip.AddrPort) error {
	b.mu.Lock()
	s, tap := b.sess, b.tap
	if s == nil {
		b.mu.Unlock()
		return net.ErrClosed
	}
	if len(pkts) > b.batchSize {
		n := b.batchSize
		b.mu.Unlock()
		return fmt.Errorf("encaptest: send of %d datagrams exceeds batch size %d", len(pkts), n)
	}
	b.sent.Add(uint64(len(pkts)))
	if b.discard.Load() {
		b.mu.Unlock()
		return nil
	}
	copies := make([][]byte, len(pkts))
	for i, p := range pkts {
		copies[i] = clone(p)
	}
	copies = b.impairLocked(copies)
	b.mu.Unlock()

	// The tap runs before delivery, so a test that records a datagram has
	// it before the peer can react to it.
	if tap != nil {
		for _, p := range pkts {
			tap(clone(p), to)
		}
	}
	if !b.peer.deliver(copies, s.addr, to) {
		b.unroutable.Add(uint64(len(copies)))
	}
	return nil
}

// Inject queues a copy of pkt for this side's ReceiveFunc as if it had
// arrived from `from`: the peer's address if from is the zero AddrPort, and
// an IPv4-mapped address as plain IPv4, as the encap.Bind contract has it. It
// bypasses the Impairment and the tap: it is how a test replays a recorded
// datagram or feeds hand-made bytes to the engine. It fails with
// net.ErrClosed while the side is closed and with ErrQueueFull, counted as
// Overflow, when the queue has no room.
func (b *Bind) Inject(pkt []byte, from netip.AddrPort) error {
	if from.IsValid() {
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	} else {
		from = b.peer.Addr()
	}
	b.mu.Lock()
	s := b.sess
	b.mu.Unlock()
	if s == nil {
		return net.ErrClosed
	}
	if s.push([][]byte{clone(pkt)}, from) == 0 {
		b.overflow.Add(1)
		return ErrQueueFull
	}
	b.injected.Add(1)
	return nil
}

// deliver queues pkts from `from` if this side is open at to, and reports
// whether it is. It never blocks: a full queue drops, as a socket buffer
// does, so a stalled receiver cannot stall its peer's sender.
func (b *Bind) deliver(pkts [][]byte, from, to netip.AddrPort) bool {
	b.mu.Lock()
	s := b.sess
	b.mu.Unlock()
	if s == nil || s.addr != to {
		return false
	}
	b.overflow.Add(uint64(len(pkts) - s.push(pkts, from)))
	return true
}

// push queues as many of pkts as there is room for, oldest first, and
// returns how many that was.
func (s *session) push(pkts [][]byte, from netip.AddrPort) int {
	s.mu.Lock()
	n := min(len(pkts), s.queueLen-len(s.queue))
	for _, p := range pkts[:n] {
		s.queue = append(s.queue, datagram{data: p, from: from})
	}
	s.mu.Unlock()
	if n > 0 {
		s.wake()
	}
	return n
}

// wake tells a waiting ReceiveFunc to look at the queue again.
func (s *session) wake() {
	select {
	case s.ready <- struct{}{}:
	default: // a token is already there
	}
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
// datagram, then takes whatever else is already queued, up to len(msgs)
// messages, so that a burst arrives as one batch, as with recvmmsg. A
// datagram longer than its buffer is truncated to it, as UDP truncates.
func (b *Bind) receiveFunc(s *session, batch int) encap.ReceiveFunc {
	return func(msgs []encap.Message) (int, error) {
		if len(msgs) == 0 || len(msgs) > batch {
			return 0, fmt.Errorf("encaptest: receive into %d messages, batch size %d", len(msgs), batch)
		}
		for {
			// Check done first: with both channels ready select picks
			// at random, and a call after Close must fail.
			select {
			case <-s.done:
				return 0, net.ErrClosed
			default:
			}
			if n, dgs := s.fill(msgs, !b.noGRO.Load()); n > 0 {
				b.received.Add(uint64(dgs))
				return n, nil
			}
			select {
			case <-s.done:
				return 0, net.ErrClosed
			case <-s.ready:
			}
		}
	}
}

// fill moves queued datagrams into msgs and returns how many messages and
// how many datagrams it filled. With gro it coalesces as the kernel does: a
// message takes following datagrams from the same source while they are as
// long as the first (the last may be shorter, and ends the train), up to
// encap.MaxGSOSegments and the length of its Buf. Only what is already
// queued is coalesced, so a lone datagram is never held back.
func (s *session) fill(msgs []encap.Message, gro bool) (n, dgs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	for n < len(msgs) && len(q) > 0 {
		m := &msgs[n]
		first := q[0]
		q = q[1:]
		size := copy(m.Buf, first.data)
		seg, count := len(first.data), 1
		for gro && count < encap.MaxGSOSegments && len(q) > 0 {
			d := q[0]
			// An empty datagram joins no train, as a train's segments
			// cannot show it, and none joins an empty one, being longer.
			if d.from != first.from || len(d.data) == 0 || len(d.data) > seg || size+len(d.data) > len(m.Buf) {
				break
			}
			size += copy(m.Buf[size:], d.data)
			q = q[1:]
			count++
			if len(d.data) < seg {
				break
			}
		}
		m.Buf = m.Buf[:size]
		m.Seg = 0
		if count > 1 {
			m.Seg = seg
		}
		m.From = first.from
		n++
		dgs += count
	}
	if len(q) == 0 {
		q = s.queue[:0] // reuse the array rather than creep along it
	} else {
		s.wake() // for a concurrent call of the same ReceiveFunc
	}
	s.queue = q
	return n, dgs
}

// clone copies p into memory of its own, keeping an empty datagram non-nil.
func clone(p []byte) []byte {
	c := make([]byte, len(p))
	copy(c, p)
	return c
}
