package tunnel

import (
	"fmt"
	"net/netip"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/routing"
)

// buildPeerSet makes the peer set for peers, reusing the Peer of every key
// that old already has, so its sessions, handshake state (and with it the
// initiation replay protection) and counters survive. It changes nothing
// that is running: the caller publishes the result or drops it. It returns
// the peers it created.
func (d *Device) buildPeerSet(old *peerSet, peers []PeerConfig) (*peerSet, []*Peer, error) {
	set := &peerSet{
		byKey:      make(map[crypto.PublicKey]*Peer, len(peers)),
		table:      new(routing.Table[*Peer]),
		byEndpoint: make(map[netip.AddrPort]*Peer),
	}
	var created []*Peer
	fresh := 0
	for i := range peers {
		if old.byKey[peers[i].PublicKey] == nil {
			fresh++
		}
	}
	slab := make([]Peer, fresh)
	for i := range peers {
		pc := &peers[i]
		if pc.PublicKey.Equal(d.identity.PublicKey()) {
			return nil, nil, fmt.Errorf("peer %q: has this node's own public key", pc.Name)
		}
		if _, dup := set.byKey[pc.PublicKey]; dup {
			return nil, nil, fmt.Errorf("peer %q: %w", pc.Name, ErrDuplicatePeer)
		}
		p := old.byKey[pc.PublicKey]
		if p == nil {
			p = &slab[len(created)]
			if err := d.newPeer(p, pc); err != nil {
				return nil, nil, err
			}
			created = append(created, p)
		}
		set.byKey[pc.PublicKey] = p
		if pc.Endpoint.IsValid() {
			set.byEndpoint[pc.Endpoint] = p
		}
		set.list = append(set.list, p)
		for _, pfx := range pc.AllowedIPs {
			set.table.Insert(pfx, p)
		}
	}
	return set, created, nil
}

// Reconfigure replaces the peer list and keeps the firewall in force.
// Peers whose key is unchanged keep their sessions; their name, allowed IPs,
// keepalive and configured endpoint take the new values. Removed peers are
// stopped and their keys erased. On error nothing has changed.
func (d *Device) Reconfigure(peers []PeerConfig) error {
	d.reconfigure.Lock()
	defer d.reconfigure.Unlock()
	keep := d.peers.Load().fw
	return d.reload(peers, func() *firewall { return keep })
}

// Reload replaces the peer list, as Reconfigure does, and the firewall, in
// one step, as on a reload of the mesh file: no packet sees the new peers
// with the old rules or the reverse. Tracked flows are put to the new rules
// at their next packet, and cut if they deny them. On error nothing has
// changed.
func (d *Device) Reload(peers []PeerConfig, fw Firewall) error {
	d.reconfigure.Lock()
	defer d.reconfigure.Unlock()
	return d.reload(peers, func() *firewall { return d.buildFirewall(fw) })
}

// reload publishes peers with the firewall fw builds, once nothing can
// fail. Callers hold d.reconfigure.
func (d *Device) reload(peers []PeerConfig, fw func() *firewall) error {
	old := d.peers.Load()
	set, created, err := d.buildPeerSet(old, peers)
	if err != nil {
		return err
	}
	set.fw = fw()
	// Nothing can fail from here on.
	for i := range peers {
		pc := &peers[i]
		p := set.byKey[pc.PublicKey]
		prev := p.settings.Swap(settingsOf(pc))
		if pc.Endpoint.IsValid() && pc.Endpoint != prev.endpoint {
			ep := pc.Endpoint
			p.endpoint.Store(&ep)
		}
	}
	d.peers.Store(set)
	for _, p := range old.list {
		if set.byKey[p.key] != p {
			p.stopTimers()
			p.zeroSessions()
			p.sendMu.Lock()
			p.staged = nil
			p.sendMu.Unlock()
		}
	}
	for _, p := range created {
		if p.settings.Load().keepalive > 0 && !d.isClosed() {
			p.sendKeepalive()
		}
	}
	d.log.Info("peers reconfigured", "peers", len(set.list), "added", len(created),
		"removed", len(old.list)+len(created)-len(set.list))
	return nil
}

// SetEndpoint points the peer with key at ep, as if the configuration said
// so: its configured endpoint becomes ep, and so does the live one, until
// the peer roams. It is for a caller that looked the peer's host name up
// again and found it moved. A peer with a persistent keepalive is sent one
// at once, so that a session (or a handshake) reaches the new address
// without waiting for the next one. It returns ErrUnknownPeer if no peer
// has key.
func (d *Device) SetEndpoint(key crypto.PublicKey, ep netip.AddrPort) error {
	d.reconfigure.Lock()
	defer d.reconfigure.Unlock()
	p := d.peers.Load().byKey[key]
	if p == nil {
		return ErrUnknownPeer
	}
	next := *p.settings.Load()
	next.endpoint = ep
	p.settings.Store(&next)
	p.setEndpoint(ep)
	if next.keepalive > 0 && !d.isClosed() {
		p.sendKeepalive()
	}
	return nil
}
