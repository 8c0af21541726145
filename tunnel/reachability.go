package tunnel

import (
	"time"

	"github.com/overlay-node/overlay-node/crypto"
)

// Reachability: whether a peer answers this node's handshakes. It is read
// by the DNS server's health check, never on the packet path: the
// timestamp is set when an initiation is sent and cleared when a handshake
// completes, both on the handshake path.

// Peer returns the peer with public key key, or nil if there is none.
func (d *Device) Peer(key crypto.PublicKey) *Peer { return d.peers.Load().byKey[key] }

// Unanswered returns how long the peer has left this node's handshake
// initiations unanswered: the time since the first initiation sent after
// the last completed handshake. It is zero while the peer answers, and
// when no initiation was sent. It keeps growing after the engine gives up
// retrying (RekeyAttemptTime), until a handshake completes.
func (p *Peer) Unanswered() time.Duration {
	since := p.counters.unansweredSince.Load()
	if since == 0 {
		return 0
	}
	return p.device.clock.Now().Sub(time.Unix(0, since))
}

// Probe starts a handshake with the peer in the background, unless a Probe
// or any other initiation did within RekeyTimeout: it tells whether a peer
// that stopped answering is back, without waiting for traffic to it. It is
// cheap enough to call on every DNS query.
func (p *Peer) Probe() {
	now := p.device.clock.Now().UnixNano()
	last := p.counters.probedAt.Load()
	if now-last < int64(RekeyTimeout) || !p.counters.probedAt.CompareAndSwap(last, now) {
		return
	}
	p.requestHandshake()
}

// noteInitiationSent starts the unanswered time, unless it runs already.
func (p *Peer) noteInitiationSent(now time.Time) {
	p.counters.unansweredSince.CompareAndSwap(0, now.UnixNano())
}
