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

// protoTimer is a Clock timer that knows whether it is pending.
type protoTimer struct {
	mu      sync.Mutex
	t       Timer
	pending bool
}

func (pt *protoTimer) init(c Clock, f func()) {
	pt.t = c.AfterFunc(time.Hour, func() {
		pt.mu.Lock()
		pt.pending = false
		pt.mu.Unlock()
		f()
	})
	pt.t.Stop()
}

func (pt *protoTimer) mod(d time.Duration) {
	pt.mu.Lock()
	pt.pending = true
	pt.t.Reset(d)
	pt.mu.Unlock()
}

func (pt *protoTimer) del() {
	pt.mu.Lock()
	pt.pending = false
	pt.t.Stop()
	pt.mu.Unlock()
}

func (pt *protoTimer) isPending() bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.pending
}

type peerTimers struct {
	retransmitHandshake protoTimer
	sendKeepalive       protoTimer
	newHandshake        protoTimer
	zeroKeyMaterial     protoTimer
	persistentKeepalive protoTimer
	// needAnotherKeepalive is set when data arrived while a keepalive
	// was already pending.
	mu                   sync.Mutex
	needAnotherKeepalive bool
	stopped              bool
}

func (p *Peer) initTimers() {
	c := p.device.clock
	p.timers.retransmitHandshake.init(c, p.expiredRetransmitHandshake)
	p.timers.sendKeepalive.init(c, p.expiredSendKeepalive)
	p.timers.newHandshake.init(c, p.expiredNewHandshake)
	p.timers.zeroKeyMaterial.init(c, p.expiredZeroKeyMaterial)
	p.timers.persistentKeepalive.init(c, p.expiredPersistentKeepalive)
}

func (p *Peer) stopTimers() {
	p.timers.mu.Lock()
	p.timers.stopped = true
	p.timers.mu.Unlock()
	p.timers.retransmitHandshake.del()
	p.timers.sendKeepalive.del()
	p.timers.newHandshake.del()
	p.timers.zeroKeyMaterial.del()
	p.timers.persistentKeepalive.del()
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
		p.timers.sendKeepalive.del()
		p.sendMu.Lock()
		if n := len(p.staged); n > 0 {
			p.drop(DropHandshakeTimeout, uint64(n))
			p.staged = p.staged[:0]
		}
		p.sendMu.Unlock()
		p.mu.Lock()
		p.handshakeStarted = time.Time{}
		p.mu.Unlock()
		if !p.timers.zeroKeyMaterial.isPending() {
			p.timers.zeroKeyMaterial.mod(RejectAfterTime * 3)
		}
		return
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
		p.timers.sendKeepalive.mod(KeepaliveTimeout)
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
	if !p.timers.newHandshake.isPending() {
		p.timers.newHandshake.mod(KeepaliveTimeout + RekeyTimeout)
	}
}

// timersDataReceived: a data packet came in; answer with a keepalive if we
// send nothing within KeepaliveTimeout.
func (p *Peer) timersDataReceived() {
	if !p.timers.sendKeepalive.isPending() {
		p.timers.sendKeepalive.mod(KeepaliveTimeout)
		return
	}
	p.timers.mu.Lock()
	p.timers.needAnotherKeepalive = true
	p.timers.mu.Unlock()
}

// timersAnyAuthenticatedPacketSent: whatever we sent serves as keepalive.
func (p *Peer) timersAnyAuthenticatedPacketSent() {
	p.timers.sendKeepalive.del()
}

// timersAnyAuthenticatedPacketReceived: the peer is alive.
func (p *Peer) timersAnyAuthenticatedPacketReceived() {
	p.timers.newHandshake.del()
}

// timersHandshakeInitiated: retry after RekeyTimeout plus jitter.
func (p *Peer) timersHandshakeInitiated() {
	p.timers.retransmitHandshake.mod(RekeyTimeout + retransmitJitter())
}

// timersHandshakeComplete: stop retrying and record the time.
func (p *Peer) timersHandshakeComplete() {
	p.timers.retransmitHandshake.del()
	p.mu.Lock()
	p.handshakeStarted = time.Time{}
	p.handshakeAttempts = 0
	p.sentLastMinuteHS = false
	p.mu.Unlock()
	p.counters.handshakesCompleted.Add(1)
	p.counters.lastHandshakeUnixNan.Store(p.device.clock.Now().UnixNano())
}

// timersSessionDerived: forget the keys if no new session follows within
// RejectAfterTime*3.
func (p *Peer) timersSessionDerived() {
	p.timers.zeroKeyMaterial.mod(RejectAfterTime * 3)
}

// timersAnyAuthenticatedPacketTraversal: restart the persistent keepalive.
func (p *Peer) timersAnyAuthenticatedPacketTraversal() {
	if p.settings.Load().keepalive > 0 {
		p.timers.persistentKeepalive.mod(p.settings.Load().keepalive)
	}
}
