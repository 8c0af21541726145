package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// The WireGuard timer state machine (paper section 6). Each event below
// arms or disarms timers; each timer's expiry is one function. All of it
// runs on the device's Clock so tests can step through it.

// protoTimer is a Clock timer that knows whether it is pending. The
// underlying timer is created the first time it is armed: most peers of a
// large mesh are idle and never arm most of their timers, and five timers
// per peer would be most of an idle peer's memory. It holds no pointer back
// to its peer or its kind: the Peer methods below take the kind, which
// keeps an idle peer small.
type protoTimer struct {
	mu      sync.Mutex
	pending bool
	t       Timer // nil until first armed
}

// timerKind names a peer's timer and the expiry handler it runs.
type timerKind uint8

const (
	timerRetransmitHandshake timerKind = iota
	timerSendKeepalive
	timerNewHandshake
	timerZeroKeyMaterial
	timerPersistentKeepalive
	numTimerKinds
)

// expireTimer runs on the clock's goroutine when timer k fires.
func (p *Peer) expireTimer(k timerKind) {
	pt := &p.timers.of[k]
	pt.mu.Lock()
	pt.pending = false
	pt.mu.Unlock()
	switch k {
	case timerRetransmitHandshake:
		p.expiredRetransmitHandshake()
	case timerSendKeepalive:
		p.expiredSendKeepalive()
	case timerNewHandshake:
		p.expiredNewHandshake()
	case timerZeroKeyMaterial:
		p.expiredZeroKeyMaterial()
	case timerPersistentKeepalive:
		p.expiredPersistentKeepalive()
	}
}

// modTimer (re)starts timer k for d.
func (p *Peer) modTimer(k timerKind, d time.Duration) {
	pt := &p.timers.of[k]
	pt.mu.Lock()
	p.armLocked(k, d)
	pt.mu.Unlock()
}

// armLocked (re)starts timer k for d; its mu must be held.
func (p *Peer) armLocked(k timerKind, d time.Duration) {
	pt := &p.timers.of[k]
	pt.pending = true
	if pt.t == nil {
		pt.t = p.device.clock.AfterFunc(d, func() { p.expireTimer(k) })
	} else {
		pt.t.Reset(d)
	}
}

// delTimer stops timer k.
func (p *Peer) delTimer(k timerKind) {
	pt := &p.timers.of[k]
	pt.mu.Lock()
	pt.pending = false
	if pt.t != nil {
		pt.t.Stop()
	}
	pt.mu.Unlock()
}

// modTimerIfIdle arms timer k for d unless it is already pending, and
// reports whether it did, under one lock.
func (p *Peer) modTimerIfIdle(k timerKind, d time.Duration) bool {
	pt := &p.timers.of[k]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.pending {
		return false
	}
	p.armLocked(k, d)
	return true
}

type peerTimers struct {
	of [numTimerKinds]protoTimer
	// needAnotherKeepalive is set when data arrived while a keepalive
	// was already pending.
	mu                   sync.Mutex
	needAnotherKeepalive bool
	stopped              bool
}

func (p *Peer) stopTimers() {
	p.timers.mu.Lock()
	p.timers.stopped = true
	p.timers.mu.Unlock()
	for k := range numTimerKinds {
		p.delTimer(k)
	}
}

func (p *Peer) timersActive() bool {
	p.timers.mu.Lock()
	defer p.timers.mu.Unlock()
	return !p.timers.stopped
}

// retransmitJitter is the random extra delay on handshake retries, so
// peers that lost packets together do not retry in lockstep.
func retransmitJitter() time.Duration {
	var b [8]byte
	rand.Read(b[:])
	return time.Duration(binary.LittleEndian.Uint64(b[:]) % uint64(RekeyTimeoutJitterMax+1))
}

// Expiry handlers.

func (p *Peer) expiredRetransmitHandshake() {
	if !p.timersActive() {
		return
	}
	p.mu.Lock()
	started := p.handshakeStarted
	p.mu.Unlock()
	if p.device.clock.Now().Sub(started) >= RekeyAttemptTime {
		p.device.log.Info("handshake did not complete, giving up", "peer", p.Name(),
			"after", RekeyAttemptTime.String())
		p.counters.handshakesFailed.Add(1)
		p.delTimer(timerSendKeepalive)
		p.sendMu.Lock()
		if n := len(p.staged); n > 0 {
			p.drop(DropHandshakeTimeout, uint64(n))
			p.staged = p.staged[:0]
		}
		p.sendMu.Unlock()
		p.mu.Lock()
		p.handshakeStarted = time.Time{}
		p.mu.Unlock()
		p.modTimerIfIdle(timerZeroKeyMaterial, RejectAfterTime*3)
		return
	}
	if p.device.unanswered != nil {
		p.device.unanswered(p.key)
	}
	p.sendInitiation(true)
}

func (p *Peer) expiredSendKeepalive() {
	if !p.timersActive() {
		return
	}
	p.sendKeepalive()
	p.timers.mu.Lock()
	again := p.timers.needAnotherKeepalive
	p.timers.needAnotherKeepalive = false
	p.timers.mu.Unlock()
	if again {
		p.modTimer(timerSendKeepalive, KeepaliveTimeout)
	}
}

func (p *Peer) expiredNewHandshake() {
	if !p.timersActive() {
		return
	}
	p.device.log.Debug("no reply to data, starting a new handshake", "peer", p.Name())
	p.sendInitiation(false)
}

func (p *Peer) expiredZeroKeyMaterial() {
	if !p.timersActive() {
		return
	}
	p.device.log.Debug("zeroing keys after long silence", "peer", p.Name())
	p.zeroSessions()
}

func (p *Peer) expiredPersistentKeepalive() {
	if p.settings.Load().keepalive > 0 && p.timersActive() {
		p.sendKeepalive()
	}
}

// Events.

// timersDataSent: a data packet went out; expect an answer within
// KeepaliveTimeout + RekeyTimeout or start a new handshake.
func (p *Peer) timersDataSent() {
	p.modTimerIfIdle(timerNewHandshake, KeepaliveTimeout+RekeyTimeout)
}

// timersDataReceived: a data packet came in; answer with a keepalive if we
// send nothing within KeepaliveTimeout.
func (p *Peer) timersDataReceived() {
	if p.modTimerIfIdle(timerSendKeepalive, KeepaliveTimeout) {
		return
	}
	p.timers.mu.Lock()
	p.timers.needAnotherKeepalive = true
	p.timers.mu.Unlock()
}

// timersAnyAuthenticatedPacketSent: whatever we sent serves as keepalive.
func (p *Peer) timersAnyAuthenticatedPacketSent() {
	p.delTimer(timerSendKeepalive)
}

// timersAnyAuthenticatedPacketReceived: the peer is alive.
func (p *Peer) timersAnyAuthenticatedPacketReceived() {
	p.delTimer(timerNewHandshake)
}

// timersHandshakeInitiated: retry after RekeyTimeout plus jitter.
func (p *Peer) timersHandshakeInitiated() {
	p.modTimer(timerRetransmitHandshake, RekeyTimeout+retransmitJitter())
}

// timersHandshakeComplete: stop retrying and record the time.
func (p *Peer) timersHandshakeComplete() {
	p.delTimer(timerRetransmitHandshake)
	p.mu.Lock()
	p.handshakeStarted = time.Time{}
	p.sentLastMinuteHS = false
	p.mu.Unlock()
	p.counters.handshakesCompleted.Add(1)
	p.counters.unansweredInitiations.Store(0)
	p.counters.lastHandshakeUnixNan.Store(p.device.clock.Now().UnixNano())
	p.counters.unansweredSince.Store(0)
}

// timersSessionDerived: forget the keys if no new session follows within
// RejectAfterTime*3.
func (p *Peer) timersSessionDerived() {
	p.modTimer(timerZeroKeyMaterial, RejectAfterTime*3)
}

// timersAnyAuthenticatedPacketTraversal: restart the persistent keepalive.
func (p *Peer) timersAnyAuthenticatedPacketTraversal() {
	if p.settings.Load().keepalive > 0 {
		p.modTimer(timerPersistentKeepalive, p.settings.Load().keepalive)
	}
}
