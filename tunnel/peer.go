package tunnel

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
)

// PeerConfig describes one remote node.
type PeerConfig struct {
	// Name is how logs, status and metrics refer to the peer.
	Name         string
	PublicKey    crypto.PublicKey
	PresharedKey crypto.PresharedKey
	// AllowedIPs are the inner addresses the peer may send from and that
	// are routed to it.
	AllowedIPs []netip.Prefix
	// Endpoint is where to send until the peer roams; zero if unknown.
	Endpoint netip.AddrPort
	// PersistentKeepalive, if nonzero, sends a keepalive this often.
	PersistentKeepalive time.Duration
}

// Peer is the engine's state for one remote node.
type Peer struct {
	// Immutable after creation: a peer is its key.
	device *Device
	key    crypto.PublicKey
	psk    crypto.PresharedKey

	// Atomic, created on first use by crypto(): an idle peer of a large
	// mesh needs no handshake state.
	hsState atomic.Pointer[peerCrypto]
	hsInit  sync.Mutex

	// Atomic: replaced whole when the configuration is reloaded, so a
	// reload keeps the peer's sessions.
	settings atomic.Pointer[peerSettings]

	// Atomic: read on every packet.
	endpoint atomic.Pointer[netip.AddrPort]
	current  atomic.Pointer[session]

	// Guarded by mu: the sessions not in use for sending, and the
	// handshake in flight.
	mu               sync.Mutex
	previous, next   *session
	hsIndex          uint32 // our index for the handshake in flight, 0 if none
	lastInitiation   time.Time
	sentLastMinuteHS bool
	handshakeStarted time.Time // first initiation of the current attempt series

	// Guarded by sendMu, which also serialises sends so per-peer order holds.
	sendMu sync.Mutex
	staged [][]byte

	initiating atomic.Bool // a goroutine is sending an initiation
	timers     peerTimers
	counters   peerCounters
}

// peerCrypto is a peer's handshake and cookie state.
type peerCrypto struct {
	hs      *crypto.Handshake
	cookies *crypto.CookieGenerator
}

// crypto returns the peer's handshake state, creating it on first use.
func (p *Peer) crypto() *peerCrypto {
	if c := p.hsState.Load(); c != nil {
		return c
	}
	p.hsInit.Lock()
	defer p.hsInit.Unlock()
	if c := p.hsState.Load(); c != nil {
		return c
	}
	// newPeer checked the key, so NewHandshake cannot fail here.
	hs, err := p.device.identity.NewHandshake(p.key, p.psk)
	if err != nil {
		panic("tunnel: handshake with a key newPeer accepted: " + err.Error())
	}
	c := &peerCrypto{hs: hs, cookies: crypto.NewCookieGenerator(p.key)}
	p.hsState.Store(c)
	return c
}

// peerSettings are the configurable parts of a peer.
type peerSettings struct {
	name      string
	keepalive time.Duration
	allowed   []netip.Prefix
	endpoint  netip.AddrPort // as configured; the live one may have roamed
}

func settingsOf(pc *PeerConfig) *peerSettings {
	return &peerSettings{
		name:      pc.Name,
		keepalive: pc.PersistentKeepalive,
		allowed:   append([]netip.Prefix(nil), pc.AllowedIPs...),
		endpoint:  pc.Endpoint,
	}
}

// Name returns the peer's name.
func (p *Peer) Name() string { return p.settings.Load().name }

// PublicKey returns the peer's static public key.
func (p *Peer) PublicKey() crypto.PublicKey { return p.key }

func (p *Peer) loadEndpoint() *netip.AddrPort { return p.endpoint.Load() }

// setEndpoint records where the peer was last heard from. Callers only pass
// endpoints of authenticated packets: that is what makes roaming safe.
func (p *Peer) setEndpoint(addr netip.AddrPort) {
	if cur := p.endpoint.Load(); cur != nil && *cur == addr {
		return
	}
	ep := new(netip.AddrPort) // not &addr: that would move addr to the heap on every call
	*ep = addr
	old := p.endpoint.Swap(ep)
	if old == nil || *old != addr {
		p.device.log.Info("peer endpoint changed", "peer", p.Name(), "endpoint", addr.String())
	}
}

// installSession publishes a freshly derived session. The initiator sends
// with it at once; the responder parks it in next until the initiator's
// first packet proves the initiator has it too.
func (p *Peer) installSession(s *session, initiator bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var retire []*session
	if initiator {
		if p.next != nil {
			retire = append(retire, p.previous)
			p.previous = p.next
			p.next = nil
			retire = append(retire, p.current.Load())
		} else {
			retire = append(retire, p.previous)
			p.previous = p.current.Load()
		}
		p.current.Store(s)
	} else {
		retire = append(retire, p.next, p.previous)
		p.next = s
		p.previous = nil
	}
	for _, r := range retire {
		if r != nil {
			p.device.indexes.release(r.localIndex)
		}
	}
}

// confirmNext promotes next to current once a packet arrived under it.
// It reports whether it did, which completes the handshake for a responder.
func (p *Peer) confirmNext(s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next != s {
		return false
	}
	if p.previous != nil {
		p.device.indexes.release(p.previous.localIndex)
	}
	p.previous = p.current.Load()
	p.current.Store(s)
	p.next = nil
	return true
}

// zeroSessions forgets every key, after RejectAfterTime*3 of silence.
func (p *Peer) zeroSessions() {
	p.mu.Lock()
	for _, s := range []*session{p.previous, p.current.Load(), p.next} {
		if s != nil {
			p.device.indexes.release(s.localIndex)
		}
	}
	p.previous, p.next = nil, nil
	p.current.Store(nil)
	if p.hsIndex != 0 {
		p.device.indexes.release(p.hsIndex)
		p.hsIndex = 0
	}
	if c := p.hsState.Load(); c != nil {
		c.hs.Clear()
	}
	p.mu.Unlock()
}

// stage keeps copies of packets that wait for a session. Packets are the
// full buffers, with HeaderRoom in front. The oldest go first when full.
func (p *Peer) stage(pkts [][]byte) {
	for _, pkt := range pkts {
		if len(p.staged) >= MaxStagedPackets {
			p.drop(DropQueueFull, 1)
			copy(p.staged, p.staged[1:])
			p.staged = p.staged[:len(p.staged)-1]
		}
		buf := make([]byte, len(pkt), len(pkt)+crypto.TagSize+encap.PaddingMultiple)
		copy(buf, pkt)
		p.staged = append(p.staged, buf)
	}
}

// drop counts a drop against this peer and the device.
func (p *Peer) drop(r DropReason, n uint64) {
	c := p.counters.drops.Load()
	if c == nil {
		p.counters.drops.CompareAndSwap(nil, new(dropCounters))
		c = p.counters.drops.Load()
	}
	c.add(r, n)
	p.device.drops.add(r, n)
}
