package tunnel

import (
	"net/netip"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
)

// DropCounts holds one count per DropReason, indexed by the reason.
type DropCounts [numDropReasons]uint64

// PeerStats is a point-in-time view of one peer.
type PeerStats struct {
	Name                string
	PublicKey           crypto.PublicKey
	Endpoint            netip.AddrPort // zero if unknown
	AllowedIPs          []netip.Prefix
	PersistentKeepalive time.Duration
	RxBytes, RxPackets  uint64
	TxBytes, TxPackets  uint64
	HandshakesCompleted uint64
	HandshakesFailed    uint64
	// UnansweredInitiations counts handshake initiations sent since the
	// last handshake completed.
	UnansweredInitiations uint64
	LastHandshake         time.Time // zero if never
	Drops                 DropCounts
}

// Stats is a point-in-time view of the device, read from atomic counters
// without stopping the packet path.
type Stats struct {
	PublicKey  crypto.PublicKey
	ListenPort uint16
	MTU        int
	Peers      []PeerStats
	// Drops counts every drop, including those with no known peer.
	Drops DropCounts
	// CookieRepliesSent counts handshakes answered with a cookie reply
	// instead of a response because the node was under load. They are
	// not drops: the sender retries with the cookie.
	CookieRepliesSent uint64
	// Batch-size histograms of the four I/O stages.
	TUNRead, TUNWrite, UDPRecv, UDPSend BatchStats
	// Firewall is the segmentation in force and its counters.
	Firewall FirewallStats
}

// Snapshot reads the device's counters.
func (d *Device) Snapshot() Stats {
	set := d.peers.Load()
	st := Stats{
		PublicKey:  d.identity.PublicKey(),
		ListenPort: d.port,
		MTU:        d.mtu,
		Peers:      make([]PeerStats, 0, len(set.list)),
		Drops:      d.drops.snapshot(),

		CookieRepliesSent: d.cookieRepliesSent.Load(),
		TUNRead:           d.tunReadBatch.snapshot(),
		TUNWrite:          d.tunWriteBatch.snapshot(),
		UDPRecv:           d.udpRecvBatch.snapshot(),
		UDPSend:           d.udpSendBatch.snapshot(),
		Firewall:          d.firewallStats(set.fw),
	}
	for _, p := range set.list {
		cfg := p.settings.Load()
		ps := PeerStats{
			Name:                  cfg.name,
			PublicKey:             p.key,
			AllowedIPs:            cfg.allowed,
			PersistentKeepalive:   cfg.keepalive,
			RxBytes:               p.counters.rxBytes.Load(),
			RxPackets:             p.counters.rxPackets.Load(),
			TxBytes:               p.counters.txBytes.Load(),
			TxPackets:             p.counters.txPackets.Load(),
			HandshakesCompleted:   p.counters.handshakesCompleted.Load(),
			HandshakesFailed:      p.counters.handshakesFailed.Load(),
			UnansweredInitiations: p.counters.unansweredInitiations.Load(),
		}
		if c := p.counters.drops.Load(); c != nil {
			ps.Drops = c.snapshot()
		}
		if ep := p.loadEndpoint(); ep != nil {
			ps.Endpoint = *ep
		}
		if ns := p.counters.lastHandshakeUnixNan.Load(); ns != 0 {
			ps.LastHandshake = time.Unix(0, ns)
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}
