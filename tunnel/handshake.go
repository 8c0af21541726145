package tunnel

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
)

// Handshake messages leave the packet path at once: they are copied into a
// bounded queue and handled by one goroutine, so a flood of initiations
// (each costs Curve25519 operations) cannot stall transport packets. The
// queue's depth is also the load signal that turns on cookies.
//
// Under load a message costs the handshake goroutine at most its MAC1 and
// MAC2 checks unless it earns more: a bad MAC1 is dropped, a valid MAC2 is
// held to the per-source handshake rate, and a missing MAC2 gets a cookie
// reply only within two limits, the same per-source rate and a global
// CookieReplyRate (peers' configured endpoints are exempt from the
// latter), because the reply's send was most of what a flood cost
// (docs/datapath.md, "Handshake floods").

// handshakeElem is one queued handshake message.
type handshakeElem struct {
	buf [encap.InitiationSize]byte
	n   int
	ep  netip.AddrPort
}

var handshakeElemPool = sync.Pool{New: func() any { return new(handshakeElem) }}

// queueHandshake hands a handshake message to the handshake goroutine,
// dropping it when the queue is full.
func (d *Device) queueHandshake(msg []byte, ep netip.AddrPort) {
	e := handshakeElemPool.Get().(*handshakeElem)
	e.n = copy(e.buf[:], msg)
	e.ep = ep
	select {
	case d.handshakes <- e:
	default:
		d.drops.add(DropQueueFull, 1)
		handshakeElemPool.Put(e)
	}
}

func (d *Device) routineHandshakes() {
	defer d.handshakeWG.Done()
	for e := range d.handshakes {
		d.handleHandshake(e.buf[:e.n], e.ep)
		handshakeElemPool.Put(e)
	}
}

// underLoad reports whether cookies are required: the handshake queue is
// an eighth full, or was within UnderLoadAfter.
func (d *Device) underLoad(now time.Time) bool {
	if d.forceUnderLoad.Load() {
		return true
	}
	if len(d.handshakes) >= HandshakeQueueSize/8 {
		d.underLoadUntil.Store(now.Add(UnderLoadAfter).UnixNano())
		return true
	}
	return now.UnixNano() < d.underLoadUntil.Load()
}

// sourceBytes is the address a cookie is bound to: ip || port.
func sourceBytes(ap netip.AddrPort, scratch *[18]byte) []byte {
	b := ap.Addr().AsSlice()
	n := copy(scratch[:], b)
	binary.LittleEndian.PutUint16(scratch[n:], ap.Port())
	return scratch[:n+2]
}

func (d *Device) handleHandshake(msg []byte, ep netip.AddrPort) {
	now := d.clock.Now()
	typ := binary.LittleEndian.Uint32(msg)
	if typ == encap.TypeCookieReply {
		d.handleCookieReply(msg, now)
		return
	}
	// A bad MAC1 means the sender does not know our public key: drop
	// silently, with no reply, so we cannot be scanned.
	if !d.cookies.CheckMAC1(msg) {
		d.drops.add(DropBadMAC1, 1)
		return
	}
	if d.underLoad(now) {
		var scratch [18]byte
		if !d.cookies.CheckMAC2(msg, sourceBytes(ep, &scratch), now) {
			if !d.allowCookieReply(ep, now) {
				d.drops.add(DropRateLimited, 1)
				return
			}
			d.sendCookieReply(msg, ep, now)
			return
		}
		if !d.limiter.Allow(ep.Addr()) {
			d.drops.add(DropRateLimited, 1)
			return
		}
	}
	switch typ {
	case encap.TypeInitiation:
		d.handleInitiation(msg, ep, now)
	case encap.TypeResponse:
		d.handleResponse(msg, ep, now)
	}
}

// allowCookieReply reports whether a cookie reply may go to ep: no more
// often than the per-source rate to one address, and within the global
// CookieReplyRate unless ep is a peer's configured endpoint, so that a
// flood from spoofed sources costs at most that many sends per second and
// still cannot starve the mesh's own peers. Only the handshake goroutine
// calls it.
func (d *Device) allowCookieReply(ep netip.AddrPort, now time.Time) bool {
	if !d.cookieLimiter.Allow(ep.Addr()) {
		return false
	}
	return d.peers.Load().byEndpoint[ep] != nil || d.cookieBudget.take(now)
}

func (d *Device) sendCookieReply(msg []byte, ep netip.AddrPort, now time.Time) {
	var scratch [18]byte
	reply, err := d.cookies.CreateReply(msg, sourceBytes(ep, &scratch), now)
	if err != nil {
		d.drops.add(DropMalformed, 1)
		return
	}
	out := encap.CookieReply{Receiver: binary.LittleEndian.Uint32(msg[4:8]), CookieReply: reply}
	var buf [encap.CookieReplySize]byte
	out.MarshalTo(buf[:])
	d.cookieRepliesSent.Add(1)
	d.sendRaw(buf[:], ep)
}

func (d *Device) handleInitiation(msg []byte, ep netip.AddrPort, now time.Time) {
	var m encap.Initiation
	if err := m.Unmarshal(msg); err != nil {
		d.drops.add(DropMalformed, 1)
		return
	}
	set := d.peers.Load()
	hs, err := d.identity.ConsumeInitiation(&m.Initiation, now, func(k crypto.PublicKey) *crypto.Handshake {
		if p := set.byKey[k]; p != nil {
			return p.crypto().hs
		}
		return nil
	})
	if err != nil {
		d.drops.add(DropHandshakeInvalid, 1)
		d.limitedLog.debug("handshake initiation rejected", "from", ep.String(), "err", err)
		return
	}
	p := set.byKey[hs.RemoteKey()]
	p.counters.rxBytes.Add(uint64(len(msg)))
	p.setEndpoint(ep)

	p.mu.Lock()
	resp, err := p.crypto().hs.CreateResponse()
	if err != nil {
		p.mu.Unlock()
		p.drop(DropHandshakeInvalid, 1)
		return
	}
	kp, err := p.crypto().hs.DeriveKeys()
	p.mu.Unlock()
	if err != nil {
		p.drop(DropHandshakeInvalid, 1)
		return
	}
	s := &session{kp: kp, peer: p, remoteIndex: m.Sender, created: now}
	s.localIndex = d.indexes.allocate(p)
	d.indexes.bind(s.localIndex, s)
	p.installSession(s, false)

	out := encap.Response{Sender: s.localIndex, Receiver: m.Sender, Response: resp}
	var buf [encap.ResponseSize]byte
	out.MarshalTo(buf[:])
	p.crypto().cookies.AddMACs(buf[:], now)
	p.timersSessionDerived()
	p.timersAnyAuthenticatedPacketTraversal()
	p.timersAnyAuthenticatedPacketSent()
	p.sendRawToPeer(buf[:])
}

func (d *Device) handleResponse(msg []byte, ep netip.AddrPort, now time.Time) {
	var m encap.Response
	if err := m.Unmarshal(msg); err != nil {
		d.drops.add(DropMalformed, 1)
		return
	}
	e, ok := d.indexes.lookup(m.Receiver)
	if !ok || e.sess != nil {
		d.drops.add(DropHandshakeInvalid, 1)
		return
	}
	p := e.peer
	p.mu.Lock()
	if p.hsIndex != m.Receiver {
		p.mu.Unlock()
		p.drop(DropHandshakeInvalid, 1)
		return
	}
	if err := p.crypto().hs.ConsumeResponse(&m.Response); err != nil {
		p.mu.Unlock()
		p.drop(DropHandshakeInvalid, 1)
		d.limitedLog.debug("handshake response rejected", "peer", p.Name(), "err", err)
		return
	}
	kp, err := p.crypto().hs.DeriveKeys()
	idx := p.hsIndex
	p.hsIndex = 0
	p.mu.Unlock()
	if err != nil {
		p.drop(DropHandshakeInvalid, 1)
		return
	}
	s := &session{kp: kp, peer: p, localIndex: idx, remoteIndex: m.Sender, created: now}
	d.indexes.bind(idx, s)
	p.counters.rxBytes.Add(uint64(len(msg)))
	p.setEndpoint(ep)
	p.installSession(s, true)
	p.timersSessionDerived()
	p.timersHandshakeComplete()
	p.timersAnyAuthenticatedPacketTraversal()
	p.timersAnyAuthenticatedPacketReceived()
	d.log.Info("handshake completed", "peer", p.Name(), "role", "initiator")
	// The responder waits for our first packet to confirm the session:
	// send what was staged, or a keepalive.
	if !p.sendStaged() {
		p.sendKeepalive()
	}
}

func (d *Device) handleCookieReply(msg []byte, now time.Time) {
	var m encap.CookieReply
	if err := m.Unmarshal(msg); err != nil {
		d.drops.add(DropMalformed, 1)
		return
	}
	e, ok := d.indexes.lookup(m.Receiver)
	if !ok {
		d.drops.add(DropHandshakeInvalid, 1)
		return
	}
	if err := e.peer.crypto().cookies.ConsumeReply(&m.CookieReply, now); err != nil {
		e.peer.drop(DropHandshakeInvalid, 1)
		return
	}
	d.log.Debug("cookie reply accepted", "peer", e.peer.Name())
}

// sendInitiation starts (or, when retry, repeats) a handshake. A new
// handshake is sent at most once per RekeyTimeout unless it is a retry.
func (p *Peer) sendInitiation(retry bool) {
	d := p.device
	if p.loadEndpoint() == nil {
		return
	}
	now := d.clock.Now()
	p.mu.Lock()
	if !retry && !p.lastInitiation.IsZero() && now.Sub(p.lastInitiation) < RekeyTimeout {
		p.mu.Unlock()
		return
	}
	if p.handshakeStarted.IsZero() {
		p.handshakeStarted = now
	}
	p.lastInitiation = now
	if p.hsIndex != 0 {
		d.indexes.release(p.hsIndex)
	}
	p.hsIndex = d.indexes.allocate(p)
	body, err := p.crypto().hs.CreateInitiation(now)
	idx := p.hsIndex
	p.mu.Unlock()
	if err != nil {
		d.limitedLog.warn("cannot create handshake initiation", "peer", p.Name(), "err", err)
		return
	}
	m := encap.Initiation{Sender: idx, Initiation: body}
	var buf [encap.InitiationSize]byte
	m.MarshalTo(buf[:])
	p.crypto().cookies.AddMACs(buf[:], now)
	p.timersAnyAuthenticatedPacketTraversal()
	p.timersAnyAuthenticatedPacketSent()
	p.timersHandshakeInitiated() // before sending: the response may beat Send back
	p.noteInitiationSent(now)
	p.counters.unansweredInitiations.Add(1)
	p.sendRawToPeer(buf[:])
}

// requestHandshake starts a handshake from the packet path without
// blocking it on Curve25519. Close joins the goroutine it starts.
func (p *Peer) requestHandshake() {
	if !p.initiating.CompareAndSwap(false, true) {
		return
	}
	d := p.device
	d.initiationsMu.Lock()
	defer d.initiationsMu.Unlock()
	if d.closed.Load() {
		p.initiating.Store(false)
		return
	}
	d.initiations.Add(1)
	go func() {
		defer d.initiations.Done()
		p.sendInitiation(false)
		p.initiating.Store(false)
	}()
}

// stopInitiations marks the device closed, so that requestHandshake starts
// no more goroutines, and waits for those it started.
func (d *Device) stopInitiations() {
	d.initiationsMu.Lock()
	d.closed.Store(true)
	d.initiationsMu.Unlock()
	d.initiations.Wait()
}

func (p *Peer) sendRawToPeer(b []byte) {
	if ep := p.loadEndpoint(); ep != nil {
		p.device.sendRaw(b, *ep)
		p.counters.txBytes.Add(uint64(len(b)))
	}
}

// sendRaw sends one datagram off the packet path.
func (d *Device) sendRaw(b []byte, ep netip.AddrPort) {
	if err := d.bind.Send([][]byte{b}, ep); err != nil {
		d.drops.add(DropSendFailed, 1)
		d.limitedLog.warn("send failed", "endpoint", ep.String(), "err", err)
	}
}
