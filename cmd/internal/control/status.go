// Package control is the daemon's local control socket: a small HTTP API on
// /var/run/overlay-node/<interface>.sock, mode 0600, that `overlay-node
// status` reads.
//
// The WireGuard UAPI socket beside it speaks for stock tools, which know
// peers only by public key. This one speaks for overlay-node's own
// commands, in the mesh file's terms: node names, the mesh, the config in
// use, and the drop counters. It serves JSON over HTTP so that it can grow
// endpoints without a new framing, and so that `curl --unix-socket` works
// for debugging:
//
//	GET /v1/status   the Status object, the same as `overlay-node status --json`
//
// It sits under cmd/internal, not under cmd/overlay-node, because it is
// the protocol of both ends: the daemon serves it, and every command that
// asks a running node something imports its client, overlay-node status
// and the CNI plugin alike.
//
// The Status JSON is a stable contract, documented in docs/metrics.md:
// fields are added, never renamed or removed, without raising
// SchemaVersion.
package control

import (
	"net/netip"
	"time"

	"github.com/overlay-node/overlay-node/tunnel"
)

// SchemaVersion is the version of the Status JSON. It is raised only for a
// change that would break a reader; new fields do not raise it.
const SchemaVersion = 1

// Status is the state of a running node.
type Status struct {
	Schema       int       `json:"schema"`        // SchemaVersion
	Time         time.Time `json:"time"`          // when the counters were read
	Version      string    `json:"version"`       // overlay-node version of the daemon
	Mesh         string    `json:"mesh"`          // [mesh] name
	Node         string    `json:"node"`          // this node's name
	Interface    string    `json:"interface"`     // the TUN interface
	PublicKey    string    `json:"public_key"`    // base64, as in the mesh file
	ListenPort   uint16    `json:"listen_port"`   // UDP port
	MTU          int       `json:"mtu"`           // TUN MTU
	ConfigHash   string    `json:"config_hash"`   // hex SHA-256 of the mesh file in use
	ConfigLoaded time.Time `json:"config_loaded"` // when that file was read
	Peers        []Peer    `json:"peers"`         // every other node, in mesh file order
	// Drops counts every packet the node dropped, by reason, including
	// those not tied to a peer. Every reason is present.
	Drops map[string]uint64 `json:"drops"`
	// DNS is the node's DNS server; null while the mesh has no domain.
	DNS *DNS `json:"dns"`
}

// DNS is what the node's DNS server serves.
type DNS struct {
	Domain    string           `json:"domain"`    // [mesh] domain
	Services  int              `json:"services"`  // how many [[service]] the zone holds
	Addresses []netip.AddrPort `json:"addresses"` // where it answers, UDP and TCP
}

// Peer is the state of one peer.
type Peer struct {
	Name       string         `json:"name"`        // node name in the mesh file
	PublicKey  string         `json:"public_key"`  // base64
	Endpoint   netip.AddrPort `json:"endpoint"`    // current UDP endpoint; "" if unknown
	AllowedIPs []netip.Prefix `json:"allowed_ips"` // addresses and subnets routed to it
	// PersistentKeepalive is the keepalive interval; 0 means off.
	PersistentKeepalive int `json:"persistent_keepalive_seconds"`
	// LatestHandshake is when the last handshake completed; null if none has.
	LatestHandshake *time.Time `json:"latest_handshake"`
	// LatestHandshakeAge is Time minus LatestHandshake in whole seconds;
	// null if no handshake has completed.
	LatestHandshakeAge  *int64 `json:"latest_handshake_age_seconds"`
	RxBytes             uint64 `json:"rx_bytes"`   // bytes of WireGuard datagrams received
	TxBytes             uint64 `json:"tx_bytes"`   // bytes of WireGuard datagrams sent
	RxPackets           uint64 `json:"rx_packets"` // datagrams received
	TxPackets           uint64 `json:"tx_packets"` // datagrams sent
	HandshakesCompleted uint64 `json:"handshakes_completed"`
	HandshakesFailed    uint64 `json:"handshakes_failed"`
	// Drops counts packets to or from this peer that were dropped, by
	// reason. Every reason is present.
	Drops map[string]uint64 `json:"drops"`
}

// Node identifies the node and the mesh file it runs, for status and
// metrics alike. It changes when the mesh file is reloaded.
type Node struct {
	Version    string    // overlay-node version
	Mesh       string    // [mesh] name
	Name       string    // this node's name
	Interface  string    // the TUN interface
	ConfigHash string    // config.Mesh.Hash
	LoadedAt   time.Time // when the mesh file was read
	DNS        *DNS      // the DNS server; nil without a domain
}

// NewStatus builds the Status of node from the engine's counters, as of now.
func NewStatus(st tunnel.Stats, node Node, now time.Time) Status {
	s := Status{
		Schema:       SchemaVersion,
		Time:         now,
		Version:      node.Version,
		Mesh:         node.Mesh,
		Node:         node.Name,
		Interface:    node.Interface,
		PublicKey:    st.PublicKey.String(),
		ListenPort:   st.ListenPort,
		MTU:          st.MTU,
		ConfigHash:   node.ConfigHash,
		ConfigLoaded: node.LoadedAt,
		Peers:        make([]Peer, 0, len(st.Peers)),
		Drops:        dropMap(&st.Drops),
		DNS:          node.DNS,
	}
	for i := range st.Peers {
		p := &st.Peers[i]
		sp := Peer{
			Name:                p.Name,
			PublicKey:           p.PublicKey.String(),
			Endpoint:            p.Endpoint,
			AllowedIPs:          append([]netip.Prefix{}, p.AllowedIPs...),
			PersistentKeepalive: int(p.PersistentKeepalive / time.Second),
			RxBytes:             p.RxBytes,
			TxBytes:             p.TxBytes,
			RxPackets:           p.RxPackets,
			TxPackets:           p.TxPackets,
			HandshakesCompleted: p.HandshakesCompleted,
			HandshakesFailed:    p.HandshakesFailed,
			Drops:               dropMap(&p.Drops),
		}
		if !p.LastHandshake.IsZero() {
			hs := p.LastHandshake
			age := int64(max(now.Sub(hs), 0) / time.Second)
			sp.LatestHandshake, sp.LatestHandshakeAge = &hs, &age
		}
		s.Peers = append(s.Peers, sp)
	}
	return s
}

// dropMap names every reason's count.
func dropMap(d *tunnel.DropCounts) map[string]uint64 {
	m := make(map[string]uint64, len(d))
	for _, r := range tunnel.DropReasons() {
		m[r.String()] = d[r]
	}
	return m
}
