package main

import (
	"net/netip"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/tunnel"
)

// newStatus builds the Status of node from the engine's counters, as of now.
func newStatus(st tunnel.Stats, node control.Node, now time.Time) control.Status {
	s := control.Status{
		Schema:       control.SchemaVersion,
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
		MeshFile:     node.MeshFile,
		MeshSource:   node.Source,
		MeshRevision: node.Revision,
		Addresses:    nonNil(node.Addresses),
		Subnets:      nonNil(node.Subnets),
		Routes:       nonNil(node.Routes),
		Peers:        make([]control.Peer, 0, len(st.Peers)),
		Drops:        dropMap(&st.Drops),
		Firewall:     firewallOf(&st.Firewall),
		DNS:          node.DNS,

		CookieRepliesSent: st.CookieRepliesSent,
	}
	if node.Reconnects != nil {
		s.MeshWatchReconnects = node.Reconnects()
	}
	for i := range st.Peers {
		p := &st.Peers[i]
		sp := control.Peer{
			Name:                  p.Name,
			PublicKey:             p.PublicKey.String(),
			Endpoint:              p.Endpoint,
			AllowedIPs:            append([]netip.Prefix{}, p.AllowedIPs...),
			PersistentKeepalive:   int(p.PersistentKeepalive / time.Second),
			RxBytes:               p.RxBytes,
			TxBytes:               p.TxBytes,
			RxPackets:             p.RxPackets,
			TxPackets:             p.TxPackets,
			HandshakesCompleted:   p.HandshakesCompleted,
			HandshakesFailed:      p.HandshakesFailed,
			UnansweredInitiations: p.UnansweredInitiations,
			Drops:                 dropMap(&p.Drops),
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

// nonNil makes an empty list print as [] rather than null.
func nonNil(p []netip.Prefix) []netip.Prefix {
	if p == nil {
		return []netip.Prefix{}
	}
	return p
}

// firewallOf is the status of the firewall from the engine's counters.
func firewallOf(f *tunnel.FirewallStats) control.Firewall {
	out := control.Firewall{
		Enabled:            f.Enabled,
		PolicyHash:         f.PolicyHash,
		Rules:              make([]control.Rule, len(f.Rules)),
		ConntrackEntries:   f.Conntrack.Entries,
		ConntrackEvictions: f.Conntrack.Evictions,
		ConntrackCut:       f.Conntrack.Cut,
		DeniedIn:           f.Denied(conntrack.In),
		DeniedOut:          f.Denied(conntrack.Out),
	}
	if f.Enabled {
		out.Deny = "drop"
		if f.Reject {
			out.Deny = "reject"
		}
	}
	for i, r := range f.Rules {
		out.Rules[i] = control.Rule{Name: r.Name, Pos: r.Pos, Flows: r.Flows}
	}
	return out
}
