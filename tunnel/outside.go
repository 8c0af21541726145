package tunnel

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/packet"
	"github.com/overlay-node/overlay-node/tundev"
)

// The outside pipeline: UDP to TUN.
//
// One goroutine per receive function of the Bind (IPv4 and IPv6) reads a
// batch of messages with recvmmsg; with UDP GRO a message is a train of
// datagrams from one sender, and the trains stay where they arrived.
// Handshake messages are copied to the handshake queue. Transport packets
// find their session by receiver index and are opened straight from the
// train into the buffer that goes to the TUN, which is the one copy of the
// receive path and costs nothing over opening in place. Then, in arrival
// order, each is checked against the replay window (only now, after
// authentication), its inner source is looked up over all peers and must
// route back to the sender, the endpoint is updated (roaming), and the
// plaintext joins one TUN write batch, which the TUN driver (package
// tundev) coalesces into super-packets.

// recvItem is one transport packet of a batch on its way to the TUN; the
// i-th item opens into the i-th TUN buffer.
type recvItem struct {
	sess    *session
	ct      []byte // the ciphertext, inside a received message
	from    netip.AddrPort
	counter uint64
	plain   []byte // nil when authentication failed
}

// recvScratch is one receive goroutine's reusable state.
type recvScratch struct {
	msgs    []encap.Message
	tunBufs [][]byte // item i opens into tunBufs[i], after HeaderRoom
	items   []recvItem
	tun     [][]byte
	open    openTask
	fwRun   flowRun // the firewall's memory of the batch
}

// newRecvScratch returns the scratch of a receive goroutine and a function
// that frees its buffers once the goroutine is done.
func newRecvScratch(batch int) (*recvScratch, func()) {
	s := &recvScratch{
		msgs:  make([]encap.Message, batch),
		items: make([]recvItem, 0, batch),
		tun:   make([][]byte, 0, batch),
	}
	msgBufs, freeMsgs := tundev.BatchBuffers(batch, encap.MaxSegmentSize)
	for i := range s.msgs {
		s.msgs[i].Buf = msgBufs[i]
	}
	var freeTun func()
	s.tunBufs, freeTun = tundev.BatchBuffers(batch, BufferSize)
	return s, func() { freeMsgs(); freeTun() }
}

func (d *Device) routineReceive(recv encap.ReceiveFunc) {
	defer d.wg.Done()
	s, free := newRecvScratch(d.bind.BatchSize())
	defer free()
	for {
		n, err := recv(s.msgs)
		if err != nil {
			if d.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			d.limitedLog.warn("udp receive failed", "err", err)
			if n == 0 {
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		d.udpRecvBatch.observe(n)
		d.receiveBatch(s, n)
		for i := range n { // the receive shortened these to what arrived
			s.msgs[i].Buf = s.msgs[i].Buf[:cap(s.msgs[i].Buf)]
		}
	}
}

// receiveBatch processes the datagrams in s.msgs[:n], in TUN batches of at
// most len(s.tunBufs) packets (a batch of GRO trains holds more datagrams
// than messages).
func (d *Device) receiveBatch(s *recvScratch, n int) {
	s.items = s.items[:0]
	var cached indexEntry
	var cachedIdx uint32
	haveCached := false
	for i := range n {
		m := &s.msgs[i]
		seg := m.SegmentSize()
		for off := 0; off < len(m.Buf); off += seg {
			pkt := m.Buf[off:min(off+seg, len(m.Buf))]
			typ, err := encap.Classify(pkt)
			if err != nil {
				d.drops.add(DropMalformed, 1)
				continue
			}
			if typ != encap.TypeTransport {
				d.queueHandshake(pkt, m.From)
				continue
			}
			idx, counter, err := encap.ParseTransportHeader(pkt)
			if err != nil {
				d.drops.add(DropMalformed, 1)
				continue
			}
			if !haveCached || idx != cachedIdx {
				e, ok := d.indexes.lookup(idx)
				if !ok || e.sess == nil {
					d.drops.add(DropNoSession, 1)
					d.rehandshakeUnknown(m.From)
					continue
				}
				cached, cachedIdx, haveCached = e, idx, true
			}
			s.items = append(s.items, recvItem{sess: cached.sess, ct: pkt[encap.TransportHeaderSize:], from: m.From, counter: counter})
			if len(s.items) == len(s.tunBufs) {
				d.deliver(s)
			}
		}
	}
	d.deliver(s)
}

// deliver opens s.items, checks them in order, and writes what passes to
// the TUN in one batch.
func (d *Device) deliver(s *recvScratch) {
	if len(s.items) == 0 {
		return
	}
	t := &s.open
	t.items, t.dst = s.items, s.tunBufs
	d.crypto.run(t, len(s.items), &t.wg)

	now := d.clock.Now()
	set := d.peers.Load()
	fw := set.fw
	var fwNow int64
	if fw != nil {
		fwNow = d.monotonic(now)
	}
	s.fwRun = flowRun{}
	s.tun = s.tun[:0]
	var run peerRun
	for i := range s.items {
		it := &s.items[i]
		p := it.sess.peer
		if it.plain == nil {
			p.drop(DropDecrypt, 1)
			continue
		}
		if it.sess.expired(now) {
			p.drop(DropExpired, 1)
			continue
		}
		if !it.sess.kp.AcceptCounter(it.counter) {
			p.drop(DropReplay, 1)
			continue
		}
		// Authenticated and fresh: only now may it move state.
		if p.current.Load() != it.sess && p.confirmNext(it.sess) {
			p.timersHandshakeComplete()
			d.log.Info("handshake completed", "peer", p.Name(), "role", "responder")
			p.sendStaged()
		}
		if run.peer != p {
			run.flush(now)
			run = peerRun{peer: p}
		}
		run.add(it.sess, it.from, encap.TransportHeaderSize+len(it.ct))
		if len(it.plain) == 0 {
			continue // keepalive
		}
		h, err := packet.Parse(it.plain)
		if err != nil {
			p.drop(DropMalformed, 1)
			continue
		}
		if owner, ok := set.table.Lookup(h.Src); !ok || owner != p {
			p.drop(DropSourceNotAllowed, 1)
			continue
		}
		if fw != nil && !fw.check(&s.fwRun, &h, it.plain, conntrack.In, fwNow) {
			p.drop(DropPolicy, 1)
			continue
		}
		run.data = true
		s.tun = append(s.tun, s.tunBufs[i][:HeaderRoom+h.TotalLen])
	}
	run.flush(now)
	s.items = s.items[:0]
	if len(s.tun) > 0 {
		d.tunWriteBatch.observe(len(s.tun))
		if err := d.tun.Write(s.tun); err != nil && !d.isClosed() {
			d.limitedLog.warn("tun write failed", "err", err)
		}
	}
}

// rehandshakeUnknown answers a transport packet for an index we do not
// know, from a peer's configured endpoint, with a handshake: the peer still
// holds keys we lost (we restarted), and would otherwise wait out its
// KeepaliveTimeout+RekeyTimeout before noticing. The initiation rate limit
// bounds what a spoofed source can make us send.
func (d *Device) rehandshakeUnknown(from netip.AddrPort) {
	if p := d.peers.Load().byEndpoint[from]; p != nil && p.current.Load() == nil {
		p.requestHandshake()
	}
}

// peerRun gathers what consecutive authenticated packets from one peer do
// to its state, so the counters, the endpoint and the timers are updated
// once per run instead of once per packet: a batch is mostly one peer's.
type peerRun struct {
	peer    *Peer
	sess    *session       // of the last packet
	from    netip.AddrPort // of the last packet: roaming follows the newest
	packets uint64
	bytes   uint64
	data    bool // any packet that was not a keepalive reached the TUN
}

func (r *peerRun) add(sess *session, from netip.AddrPort, size int) {
	r.sess, r.from = sess, from
	r.packets++
	r.bytes += uint64(size)
}

func (r *peerRun) flush(now time.Time) {
	p := r.peer
	if p == nil || r.packets == 0 {
		return
	}
	p.setEndpoint(r.from)
	p.counters.rxPackets.Add(r.packets)
	p.counters.rxBytes.Add(r.bytes)
	p.timersAnyAuthenticatedPacketReceived()
	p.timersAnyAuthenticatedPacketTraversal()
	p.keepKeyFreshReceiving(r.sess, now)
	if r.data {
		p.timersDataReceived()
	}
}

// keepKeyFreshReceiving: an initiator whose session nears RejectAfterTime
// rekeys once, so the session does not expire while data still flows.
func (p *Peer) keepKeyFreshReceiving(sess *session, now time.Time) {
	if !sess.kp.IsInitiator() || now.Sub(sess.created) < RejectAfterTime-KeepaliveTimeout-RekeyTimeout {
		return
	}
	p.mu.Lock()
	sent := p.sentLastMinuteHS
	p.sentLastMinuteHS = true
	p.mu.Unlock()
	if !sent {
		p.requestHandshake()
	}
}

// openTask authenticates and decrypts items[lo:hi], item i into dst[i]
// behind HeaderRoom.
type openTask struct {
	items []recvItem
	dst   [][]byte
	wg    sync.WaitGroup
}

func (t *openTask) doRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		it := &t.items[i]
		plain, err := it.sess.kp.Open(t.dst[i][HeaderRoom:HeaderRoom], it.counter, it.ct)
		if err != nil {
			it.plain = nil
			continue
		}
		if plain == nil {
			plain = t.dst[i][HeaderRoom:HeaderRoom]
		}
		it.plain = plain
	}
}
