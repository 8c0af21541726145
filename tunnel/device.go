package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/ratelimiter"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/routing"
	"github.com/overlay-node/overlay-node/tundev"
)

// Config is what the engine needs to run one node.
type Config struct {
	PrivateKey crypto.PrivateKey
	// ListenPort is the UDP port; 0 picks one.
	ListenPort uint16
	// MTU is the largest inner packet the TUN device carries.
	MTU   int
	Peers []PeerConfig
	// Firewall is the segmentation in force at start; Reload replaces it.
	Firewall Firewall
	// ConntrackMax bounds the firewall's connection table, for the
	// device's life; 0 means conntrack.DefaultMax.
	ConntrackMax int
}

// Options are the engine's collaborators.
type Options struct {
	Logger *slog.Logger // nil discards logs
	Clock  Clock        // nil means SystemClock
	// HandshakeUnanswered, if set, is called with a peer's key each time
	// an initiation to it went unanswered for RekeyTimeout and is about to
	// be retried: a sign that its endpoint may have moved. It runs on the
	// timer goroutine and must not block.
	HandshakeUnanswered func(crypto.PublicKey)
}

// Device is one running node: a TUN device, a UDP bind, and its peers.
//
// Its fields are grouped by how they are synchronised.
type Device struct {
	// Immutable after New. The pointed-to values synchronise themselves.
	tun         tundev.Device
	bind        encap.Bind
	log         *slog.Logger
	clock       Clock
	identity    *crypto.Identity
	cookies     *crypto.CookieChecker
	mtu         int
	epoch       time.Time           // the firewall's clock counts from here
	indexes     *indexTable         // guarded by its own lock
	handshakes  chan *handshakeElem // closed by Close once no reader can send
	limitedLog  *rateLimitedLogger  // guarded by its own lock
	unanswered  func(crypto.PublicKey)
	scratchPool sync.Pool

	// Set once in Up, before the goroutines that use them start; read
	// without locks afterwards. Port, Snapshot and Close must not run
	// concurrently with Up.
	port    uint16                  // Config.ListenPort until Up, then the bound port
	crypto  *cryptoPool             // nil until Up
	limiter ratelimiter.Ratelimiter // initialised by Up; locks internally
	// cookieLimiter bounds cookie replies per source; initialised by Up.
	cookieLimiter ratelimiter.Ratelimiter

	// Owned by the handshake goroutine.
	cookieBudget tokenBucket // the global cap on cookie replies

	// Atomic. The peer set is replaced whole, never mutated, so the packet
	// path reads it without locks.
	peers          atomic.Pointer[peerSet]
	forceUnderLoad atomic.Bool
	underLoadUntil atomic.Int64
	closed         atomic.Bool // set under initiationsMu
	// conntrack is the firewall's connection table, created with the
	// first rules (under reconfigure) and kept while the device lives.
	conntrack atomic.Pointer[conntrack.Table]

	drops             dropCounters
	cookieRepliesSent atomic.Uint64 // handshakes answered with a cookie: load, not drops

	tunReadBatch, tunWriteBatch, udpRecvBatch, udpSendBatch batchHistogram

	// reconfigure serialises replacements of peers and rules (Reload)
	// and guards the fields below it.
	reconfigure  sync.Mutex
	conntrackMax int                       // immutable
	ruleFlows    map[string]*atomic.Uint64 // each rule's flow count, by name

	// Shutdown: Close runs once and joins every goroutine.
	closeOnce   sync.Once
	wg          sync.WaitGroup // the packet readers
	handshakeWG sync.WaitGroup // the handshake goroutine, which outlives them
	// initiations counts the goroutines of requestHandshake. initiationsMu
	// orders their Add against Close setting closed, so none starts after
	// Close waits.
	initiationsMu sync.Mutex
	initiations   sync.WaitGroup
}

// peerSet is an immutable snapshot of the peers and their routes.
type peerSet struct {
	list  []*Peer
	byKey map[crypto.PublicKey]*Peer
	table *routing.Table[*Peer]
	// fw is the firewall in force; nil without rules.
	fw *firewall
	// byEndpoint finds a peer by its configured endpoint, to recover
	// quickly when the peer restarted and still sends with old keys.
	byEndpoint map[netip.AddrPort]*Peer
}

// ErrDuplicatePeer is returned when two peers share a public key.
var ErrDuplicatePeer = errors.New("duplicate peer public key")

// ErrUnknownPeer is returned for a public key that is not a peer.
var ErrUnknownPeer = errors.New("no peer has this public key")

// New builds a device over tun and bind. Nothing runs until Up.
func New(tdev tun.Device, bind encap.Bind, cfg Config, opt Options) (*Device, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Clock == nil {
		opt.Clock = SystemClock{}
	}
	if cfg.MTU <= 0 {
		cfg.MTU = encap.DefaultMTU
	}
	id := crypto.NewIdentity(cfg.PrivateKey)
	d := &Device{
		bind:       bind,
		log:        opt.Logger,
		clock:      opt.Clock,
		identity:   id,
		cookies:    crypto.NewCookieChecker(id.PublicKey()),
		mtu:        cfg.MTU,
		epoch:      opt.Clock.Now(),
		port:       cfg.ListenPort,
		indexes:    newIndexTable(),
		handshakes: make(chan *handshakeElem, HandshakeQueueSize),
		limitedLog: newRateLimitedLogger(opt.Logger, opt.Clock),

		conntrackMax: cfg.ConntrackMax,
		unanswered:   opt.HandshakeUnanswered,
	}
	d.tun = tundev.New(tdev, tundev.Options{Drop: d.countTUNDrop})
	set, _, err := d.buildPeerSet(&peerSet{}, cfg.Peers)
	if err != nil {
		return nil, err
	}
	set.fw = d.buildFirewall(cfg.Firewall)
	d.peers.Store(set)
	return d, nil
}

// countTUNDrop counts a frame the TUN driver discarded.
func (d *Device) countTUNDrop(r tundev.Drop) {
	switch r {
	case tundev.DropTooBig:
		d.drops.add(DropTooBig, 1)
	default:
		d.drops.add(DropMalformed, 1)
	}
}

// newPeer sets up p, a zero Peer, for pc. Peers come from one slab per
// (re)configuration rather than one allocation each: fewer objects, and no
// start-up garbage between them to keep pages resident.
func (d *Device) newPeer(p *Peer, pc *PeerConfig) error {
	if pc.PublicKey.IsLowOrder() {
		return fmt.Errorf("peer %q: %w", pc.Name, crypto.ErrLowOrderKey)
	}
	p.device, p.key, p.psk = d, pc.PublicKey, pc.PresharedKey
	p.settings.Store(settingsOf(pc))
	if pc.Endpoint.IsValid() {
		ep := pc.Endpoint
		p.endpoint.Store(&ep)
	}
	return nil
}

// Up opens the UDP port and starts the pipelines.
func (d *Device) Up() error {
	fns, port, err := d.bind.Open(d.port)
	if err != nil {
		return fmt.Errorf("open udp port %d: %w", d.port, err)
	}
	d.port = port
	d.limiter.Init()
	d.cookieLimiter.Init()
	d.cookieBudget = newTokenBucket(CookieReplyRate, CookieReplyRate/10)
	d.crypto = newCryptoPool()
	d.handshakeWG.Add(1)
	go d.routineHandshakes()
	d.wg.Add(1 + len(fns))
	go d.routineReadTUN()
	for _, fn := range fns {
		go d.routineReceive(fn)
	}
	// Peers that keep NAT mappings open start at once.
	for _, p := range d.peers.Load().list {
		if p.settings.Load().keepalive > 0 {
			p.sendKeepalive()
		}
	}
	return nil
}

// Port returns the UDP port the device listens on.
func (d *Device) Port() uint16 { return d.port }

// PublicKey returns the device's own public key.
func (d *Device) PublicKey() crypto.PublicKey { return d.identity.PublicKey() }

// monotonic returns the firewall's clock reading for t: nanoseconds since
// the device was made.
func (d *Device) monotonic(t time.Time) int64 { return int64(t.Sub(d.epoch)) }

func (d *Device) isClosed() bool { return d.closed.Load() }

// Close stops every goroutine and closes the TUN device and the bind.
func (d *Device) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.stopInitiations()
		for _, p := range d.peers.Load().list {
			p.stopTimers()
		}
		err = errors.Join(d.bind.Close(), d.tun.Close())
		d.wg.Wait() // no reader can queue a handshake after this
		close(d.handshakes)
		d.handshakeWG.Wait()
		if d.crypto != nil {
			d.crypto.close()
		}
		d.limiter.Close()
		d.cookieLimiter.Close()
	})
	return err
}

// Peers returns the peers in configuration order.
func (d *Device) Peers() []*Peer { return d.peers.Load().list }

// rateLimitedLogger logs a message at most once per second per message
// text, because errors on the packet path can repeat at packet rate.
type rateLimitedLogger struct {
	log   *slog.Logger
	clock Clock
	mu    sync.Mutex
	last  map[string]time.Time
}

func newRateLimitedLogger(l *slog.Logger, c Clock) *rateLimitedLogger {
	return &rateLimitedLogger{log: l, clock: c, last: make(map[string]time.Time)}
}

func (r *rateLimitedLogger) allow(msg string) bool {
	now := r.clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.last[msg]; ok && now.Sub(t) < time.Second {
		return false
	}
	r.last[msg] = now
	return true
}

func (r *rateLimitedLogger) warn(msg string, args ...any) {
	if r.allow(msg) {
		r.log.Warn(msg, args...)
	}
}

func (r *rateLimitedLogger) debug(msg string, args ...any) {
	if r.log.Enabled(context.Background(), slog.LevelDebug) && r.allow(msg) {
		r.log.Debug(msg, args...)
	}
}
