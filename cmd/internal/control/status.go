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
//	GET /v1/node     the Node object: who the node is and what it hands to
//	                 containers, for the CNI plugin
//
// It sits under cmd/internal, not under cmd/overlay-node, because it is
// the protocol of both ends: the daemon serves it, and every command that
// asks a running node something imports its client, overlay-node status
// and the CNI plugin alike. It imports no engine package, so that the
// plugin links none: the daemon turns the engine's counters into a Status.
//
// The Status JSON is a stable contract, documented in docs/metrics.md:
// fields are added, never renamed or removed, without raising
// SchemaVersion.
package control

import (
	"net/netip"
	"time"
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
	MeshFile     string    `json:"mesh_file"`     // path of the mesh file in use
	// Where the mesh comes from: "file" or "etcd", the etcd revision in
	// force (0 for a file), and how often the watch of etcd was lost and
	// the mesh read afresh.
	MeshSource          string `json:"mesh_source"`
	MeshRevision        int64  `json:"mesh_revision"`
	MeshWatchReconnects uint64 `json:"mesh_watch_reconnects"`
	// Addresses are this node's overlay addresses, as on the interface.
	Addresses []netip.Prefix `json:"addresses"`
	// Subnets are the networks this node routes for the mesh: its
	// subnets and container networks, for which the host must forward.
	Subnets []netip.Prefix `json:"subnets"`
	// Routes are the prefixes the node routes through the interface.
	Routes []netip.Prefix `json:"routes"`
	Peers  []Peer         `json:"peers"` // every other node, in mesh file order
	// Drops counts every packet the node dropped, by reason, including
	// those not tied to a peer. Every reason is present.
	Drops map[string]uint64 `json:"drops"`
	// CookieRepliesSent counts handshakes answered with a cookie reply
	// because the node was under load (not drops: the sender retries).
	CookieRepliesSent uint64 `json:"cookie_replies_sent"`
	// Firewall is the segmentation in force.
	Firewall Firewall `json:"firewall"`
	// DNS is the node's DNS server; null while the mesh has no domain.
	DNS *DNS `json:"dns"`
}

// DNS is what the node's DNS server serves.
type DNS struct {
	Domain    string           `json:"domain"`    // [mesh] domain
	Services  int              `json:"services"`  // how many [[service]] the zone holds
	Addresses []netip.AddrPort `json:"addresses"` // where it answers, UDP and TCP
}

// Firewall is the state of a node's firewall.
type Firewall struct {
	Enabled    bool   `json:"enabled"`     // [[allow]] rules are loaded
	Deny       string `json:"deny"`        // "reject" or "drop"; "" when not enabled
	PolicyHash string `json:"policy_hash"` // hex SHA-256 of the rules in force; "" when not enabled
	Rules      []Rule `json:"rules"`       // in file order
	// Conntrack is the size and the counters of the connection table.
	ConntrackEntries   int    `json:"conntrack_entries"`
	ConntrackEvictions uint64 `json:"conntrack_evictions"` // live flows removed to make room
	ConntrackCut       uint64 `json:"conntrack_cut"`       // flows a reload's rules denied
	DeniedIn           uint64 `json:"denied_in"`           // packets from the mesh denied
	DeniedOut          uint64 `json:"denied_out"`          // packets to the mesh denied
}

// Rule is one loaded rule and its hits.
type Rule struct {
	Name  string `json:"name"`
	Pos   string `json:"pos"`   // file:line
	Flows uint64 `json:"flows"` // flows it admitted since it was loaded
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
	// UnansweredInitiations counts handshake initiations sent since the
	// last handshake completed: a peer that does not answer.
	UnansweredInitiations uint64 `json:"handshake_attempts_unanswered"`
	// Drops counts packets to or from this peer that were dropped, by
	// reason. Every reason is present.
	Drops map[string]uint64 `json:"drops"`
}

// Node identifies the node and the mesh file it runs, for status and
// metrics alike, and says what the node hands to the containers on its
// host. It changes when the mesh file is reloaded. Its JSON, at NodePath,
// is a contract like Status's: fields are added, never renamed.
type Node struct {
	Version    string    `json:"version"`       // overlay-node version
	Mesh       string    `json:"mesh"`          // [mesh] name
	Name       string    `json:"name"`          // this node's name
	Interface  string    `json:"interface"`     // the TUN interface
	ConfigHash string    `json:"config_hash"`   // config.Mesh.Hash
	LoadedAt   time.Time `json:"config_loaded"` // when the mesh file was read
	MeshFile   string    `json:"mesh_file"`     // path of the mesh file
	Source     string    `json:"mesh_source"`   // "file" or "etcd"
	Revision   int64     `json:"mesh_revision"` // the etcd revision in force; 0 for a file
	// Reconnects counts the watch reconnects of the mesh source; nil
	// counts none.
	Reconnects func() uint64 `json:"-"`

	MTU        int            `json:"mtu"`        // the mesh MTU, which containers take too
	Addresses  []netip.Prefix `json:"addresses"`  // this node's overlay addresses
	Subnets    []netip.Prefix `json:"subnets"`    // networks this node routes for the mesh
	Routes     []netip.Prefix `json:"routes"`     // prefixes routed through the interface
	Containers []netip.Prefix `json:"containers"` // its container networks; empty when it has none
	Domain     string         `json:"domain"`     // the mesh's DNS domain; "" when it has none
	DNS        *DNS           `json:"dns"`        // this node's DNS server; null without a domain
}
