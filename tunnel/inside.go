package tunnel

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/packet"
	"github.com/overlay-node/overlay-node/tundev"
)

// The inside pipeline: TUN to UDP.
//
// One goroutine reads batches from the TUN device into buffers that keep
// HeaderRoom free in front of every packet. It routes each packet to a peer
// by destination, groups the batch by peer, and hands each group to
// Peer.send, which assigns counters, writes the transport header into the
// room, pads, and seals in place — split across cores by cryptoPool for big
// batches — then sends the whole group with one Bind.Send (sendmmsg, GSO).
// Nothing is copied between the TUN read and the socket write, and per-peer
// order holds because a group leaves only after all of it is sealed.

// sendScratch is the inside goroutine's reusable state; nothing on the path
// allocates after it is built.
type sendScratch struct {
	bufs   [][]byte
	sizes  []int
	groups []peerGroup
	out    [][]byte
	seal   sealTask
	// rejects are the answers to denied packets, built in their buffers,
	// for the TUN.
	rejects [][]byte
	fwRun   flowRun // the firewall's memory of the batch
}

// peerGroup is the packets of one batch bound for one peer.
type peerGroup struct {
	peer *Peer
	pkts [][]byte
}

// newSendScratch returns the scratch of a TUN reader and a function that
// frees its buffers once the reader is done.
func newSendScratch(batch int) (*sendScratch, func()) {
	s := &sendScratch{
		sizes:   make([]int, batch),
		out:     make([][]byte, 0, batch),
		rejects: make([][]byte, 0, batch),
	}
	var free func()
	s.bufs, free = tundev.BatchBuffers(batch, BufferSize)
	s.seal.counters = make([]uint64, batch)
	return s, free
}

func (s *sendScratch) group(p *Peer) *peerGroup {
	for i := range s.groups {
		if s.groups[i].peer == p {
			return &s.groups[i]
		}
	}
	if len(s.groups) < cap(s.groups) {
		s.groups = s.groups[:len(s.groups)+1]
		g := &s.groups[len(s.groups)-1]
		g.peer, g.pkts = p, g.pkts[:0]
		return g
	}
	s.groups = append(s.groups, peerGroup{peer: p, pkts: make([][]byte, 0, len(s.bufs))})
	return &s.groups[len(s.groups)-1]
}

func (d *Device) routineReadTUN() {
	defer d.wg.Done()
	s, free := newSendScratch(d.tun.BatchSize())
	defer free()
	for {
		n, err := d.tun.Read(s.bufs, s.sizes)
		if err != nil {
			if d.isClosed() || errors.Is(err, os.ErrClosed) {
				return
			}
			d.limitedLog.warn("tun read failed", "err", err)
			if n == 0 {
				time.Sleep(10 * time.Millisecond) // don't spin on a persistent error
				continue
			}
		}
		d.tunReadBatch.observe(n)
		d.routeBatch(s, n)
	}
}

// routeBatch groups the packets in s.bufs[:n] by peer and sends each group.
// The firewall, if any, checks each packet once it has a route; the answers
// to rejected packets go back into the TUN.
func (d *Device) routeBatch(s *sendScratch, n int) {
	set := d.peers.Load()
	fw := set.fw
	var now int64
	if fw != nil {
		now = d.monotonic(d.clock.Now())
	}
	s.groups = s.groups[:0]
	s.rejects = s.rejects[:0]
	s.fwRun = flowRun{}
	for i := 0; i < n; i++ {
		size := s.sizes[i]
		if size == 0 {
			continue
		}
		h, err := packet.Parse(s.bufs[i][HeaderRoom : HeaderRoom+size])
		if err != nil {
			d.drops.add(DropMalformed, 1)
			continue
		}
		p, ok := set.table.Lookup(h.Dst)
		if !ok {
			d.drops.add(DropNoRoute, 1)
			continue
		}
		if size > d.mtu {
			p.drop(DropTooBig, 1)
			continue
		}
		if fw != nil && !fw.check(&s.fwRun, &h, s.bufs[i][HeaderRoom:HeaderRoom+size], conntrack.Out, now) {
			if fw.reject {
				if m := rejectInPlace(s.bufs[i][HeaderRoom:], &h); m > 0 {
					s.rejects = append(s.rejects, s.bufs[i][:HeaderRoom+m])
				}
			}
			continue
		}
		g := s.group(p)
		g.pkts = append(g.pkts, s.bufs[i][:HeaderRoom+size])
	}
	if len(s.rejects) > 0 {
		if err := d.tun.Write(s.rejects); err != nil && !d.isClosed() {
			d.limitedLog.warn("tun write of rejections failed", "err", err)
		}
	}
	for i := range s.groups {
		g := &s.groups[i]
		g.peer.send(g.pkts, s)
		g.pkts = g.pkts[:0]
	}
}

// send encrypts and transmits pkts (each a buffer with HeaderRoom in front)
// in order, or stages them and starts a handshake if there is no usable
// session.
func (p *Peer) send(pkts [][]byte, s *sendScratch) {
	now := p.device.clock.Now()
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	sess := p.current.Load()
	if sess == nil || sess.expired(now) || p.loadEndpoint() == nil {
		if p.loadEndpoint() == nil {
			p.drop(DropNoEndpoint, uint64(len(pkts)))
			return
		}
		p.stage(pkts)
		p.requestHandshake()
		return
	}
	if len(p.staged) > 0 {
		p.sealAndSend(sess, p.staged, s, now)
		p.staged = p.staged[:0]
	}
	p.sealAndSend(sess, pkts, s, now)
}

// sendStaged flushes packets that waited for a session. It reports whether
// anything was sent.
func (p *Peer) sendStaged() bool {
	now := p.device.clock.Now()
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	sess := p.current.Load()
	if len(p.staged) == 0 || sess == nil {
		return false
	}
	s := p.device.stagedScratch()
	p.sealAndSend(sess, p.staged, s, now)
	p.device.putStagedScratch(s)
	p.staged = p.staged[:0]
	return true
}

// sendKeepalive sends an empty transport packet, which the receiver counts
// as proof of life; without a session it starts a handshake instead.
func (p *Peer) sendKeepalive() {
	now := p.device.clock.Now()
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	sess := p.current.Load()
	if sess == nil || sess.expired(now) {
		p.requestHandshake()
		return
	}
	s := p.device.stagedScratch()
	buf := s.bufs[0][:HeaderRoom]
	s.out = s.out[:0]
	p.sealAndSend(sess, [][]byte{buf}, s, now)
	p.device.putStagedScratch(s)
}

// sealAndSend is the per-batch core of the send path. Callers hold sendMu.
func (p *Peer) sealAndSend(sess *session, pkts [][]byte, s *sendScratch, now time.Time) {
	d := p.device
	ep := p.loadEndpoint()
	t := &s.seal
	t.kp, t.pkts, t.mtu = sess.kp, pkts, d.mtu
	n := 0
	for i := range pkts {
		c, ok := sess.kp.NextSendCounter()
		if !ok {
			p.drop(DropExpired, uint64(len(pkts)-i))
			break
		}
		t.counters[i] = c
		encap.PutTransportHeader(pkts[i], sess.remoteIndex, c)
		n++
	}
	t.pkts = pkts[:n]
	d.crypto.run(t, n, &t.wg)

	s.out = s.out[:0]
	var bytes uint64
	data := false
	for i := 0; i < n; i++ {
		s.out = append(s.out, t.pkts[i])
		bytes += uint64(len(t.pkts[i]))
		data = data || len(t.pkts[i]) > encap.TransportOverhead
	}
	if n > 0 {
		// Timers first: the reply can arrive, and disarm them, before
		// Send returns.
		p.timersAnyAuthenticatedPacketTraversal()
		p.timersAnyAuthenticatedPacketSent()
		if data {
			p.timersDataSent()
		}
		d.udpSendBatch.observe(n)
		if err := d.bind.Send(s.out, *ep); err != nil {
			p.drop(DropSendFailed, uint64(n))
			d.limitedLog.warn("send failed", "peer", p.Name(), "err", err)
		} else {
			p.counters.txPackets.Add(uint64(n))
			p.counters.txBytes.Add(bytes)
		}
	}
	p.keepKeyFreshSending(sess, now)
}

// keepKeyFreshSending starts a rekey when the initiator's session is old
// or has sent RekeyAfterMessages.
func (p *Peer) keepKeyFreshSending(sess *session, now time.Time) {
	if !sess.kp.IsInitiator() {
		return
	}
	if now.Sub(sess.created) >= RekeyAfterTime || sess.kp.SendCount() >= crypto.RekeyAfterMessages {
		p.requestHandshake()
	}
}

// sealTask seals pkts[lo:hi] in place: header room holds the header
// already; the payload is padded to a multiple of 16 and sealed.
type sealTask struct {
	kp       *crypto.Keypair
	pkts     [][]byte
	counters []uint64
	mtu      int
	wg       sync.WaitGroup
}

func (t *sealTask) doRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		pkt := t.pkts[i]
		size := len(pkt) - HeaderRoom
		padded := encap.PaddedLen(size, t.mtu)
		pkt = pkt[:HeaderRoom+padded]
		clear(pkt[HeaderRoom+size:])
		t.pkts[i] = t.kp.Seal(pkt[:HeaderRoom], t.counters[i], pkt[HeaderRoom:])
	}
}

// stagedScratch returns a send scratch for paths off the TUN goroutine
// (handshake completion, keepalives), which are rare.
func (d *Device) stagedScratch() *sendScratch {
	if s, ok := d.scratchPool.Get().(*sendScratch); ok {
		return s
	}
	s := &sendScratch{out: make([][]byte, 0, MaxStagedPackets), bufs: [][]byte{make([]byte, HeaderRoom+crypto.TagSize)}}
	s.seal.counters = make([]uint64, MaxStagedPackets)
	return s
}

func (d *Device) putStagedScratch(s *sendScratch) { d.scratchPool.Put(s) }
