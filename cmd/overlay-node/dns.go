package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/dnsserver"
	"github.com/overlay-node/overlay-node/dnszone"
	"github.com/overlay-node/overlay-node/tunnel"
)

// Implementation constants of service discovery.
const (
	// dnsPort is where every node answers DNS on its overlay addresses.
	dnsPort = 53
	// unreachableAfter is how long a peer may leave this node's handshakes
	// unanswered before its instances leave service answers (DESIGN.md,
	// "Service discovery"). A peer that dies while a session is in use is
	// noticed by WireGuard's timers only once data to it goes unanswered
	// for 15 s, so it leaves the answers about 35 s after it died.
	unreachableAfter = 20 * time.Second
	// resolvConf is where the default upstreams come from.
	resolvConf = "/etc/resolv.conf"
)

// dnsSettings are what the mesh file says about this node's DNS server.
type dnsSettings struct {
	domain    string                      // "" turns DNS off
	zone      *dnszone.Zone               // nil without a domain
	listen    []netip.AddrPort            // self's overlay addresses, port 53; nil without a domain
	upstreams []netip.AddrPort            // dns_upstream; nil: the host's resolv.conf
	keys      map[string]crypto.PublicKey // every peer's key by node name, for the health check
}

// dnsOf builds the zone of the mesh as self serves it. The config has
// checked what the zone relies on, so an error here is a bug, reported
// like a bad mesh file: before any service is touched.
func dnsOf(mesh *config.Mesh, self *config.Node) (dnsSettings, error) {
	if mesh.Domain == "" {
		return dnsSettings{}, nil
	}
	in := dnszone.Input{Domain: mesh.Domain, Self: self.Name}
	keys := make(map[string]crypto.PublicKey, len(mesh.Nodes))
	for i := range mesh.Nodes {
		nd := &mesh.Nodes[i]
		zn := dnszone.Node{Name: nd.Name}
		for _, a := range nd.Addresses {
			zn.Addresses = append(zn.Addresses, a.Addr())
		}
		in.Nodes = append(in.Nodes, zn)
		if nd.Name != self.Name {
			keys[nd.Name] = nd.PublicKey
		}
	}
	for _, s := range mesh.Services {
		in.Services = append(in.Services, dnszone.Service{Name: s.Name, Nodes: s.Nodes, Port: s.Port, Protocol: s.Protocol})
	}
	z, err := dnszone.New(in)
	if err != nil {
		return dnsSettings{}, fmt.Errorf("%s: %w", mesh.Path, err)
	}
	listen := dnsInfo(mesh, self).Addresses
	return dnsSettings{domain: mesh.Domain, zone: z, listen: listen, upstreams: mesh.DNSUpstream, keys: keys}, nil
}

// dnsInfo is what status says about the DNS server of self: nil without a
// domain. With one, the server answers on these addresses, or the node did
// not start (or reload).
func dnsInfo(mesh *config.Mesh, self *config.Node) *control.DNS {
	if mesh.Domain == "" {
		return nil
	}
	d := &control.DNS{Domain: mesh.Domain, Services: len(mesh.Services)}
	for _, a := range self.Addresses {
		d.Addresses = append(d.Addresses, netip.AddrPortFrom(a.Addr(), dnsPort))
	}
	return d
}

// dnsService answers DNS for the mesh domain on the node's overlay
// addresses. Its server lives as long as the node, so its counters do too;
// it listens only while the mesh has a domain.
type dnsService struct {
	n      *node
	srv    *dnsserver.Server
	health *peerHealth

	cur        dnsSettings      // what runs
	closing    []netip.AddrPort // listeners a reload no longer needs, closed at commit
	hostDomain string           // the domain last registered with the host's resolver, or logged about
	host       *hostDNS         // the registration with the host's resolver; nil if none
}

func (s *dnsService) open(n *node, st *meshState) error {
	s.n = n
	s.health = &peerHealth{dev: n.dev}
	s.health.keys.Store(&st.dns.keys)
	s.srv = dnsserver.New(dnsserver.Config{Health: s.health, Logger: n.log}, st.dns.zone)
	n.dnsStats = s.srv.Stats()
	if st.dns.domain == "" {
		return nil
	}
	s.srv.SetUpstreams(upstreamsOf(n, st.dns))
	if err := s.srv.Listen(st.dns.listen); err != nil {
		s.srv.Close()
		return fmt.Errorf("dns: %w (hint: another DNS server may hold port 53 on the overlay address)", err)
	}
	s.cur = st.dns
	return nil
}

// serve registers the domain with the host's resolver: only now is the
// node answering on every address.
func (s *dnsService) serve(*node) { s.registerHost() }

// reload swaps in the new zone and upstreams, and listens on the addresses
// the new mesh adds (DNS turned on, an address added). The listeners it no
// longer needs are closed at commit, so that an undo finds them open.
func (s *dnsService) reload(n *node, next *meshState) (func(), error) {
	prev := s.cur
	add, del := addrPortDiff(next.dns.listen, prev.listen), addrPortDiff(prev.listen, next.dns.listen)
	if err := s.srv.Listen(add); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	if next.dns.zone != nil {
		s.srv.Swap(next.dns.zone)
		s.srv.SetUpstreams(upstreamsOf(n, next.dns))
	}
	s.health.keys.Store(&next.dns.keys)
	s.cur, s.closing = next.dns, del
	if len(add)+len(del) > 0 {
		n.log.Info("dns listeners changed", "added", add, "removed", del)
	}
	return func() {
		s.srv.Unlisten(add)
		if prev.zone != nil {
			s.srv.Swap(prev.zone)
			s.srv.SetUpstreams(upstreamsOf(n, prev))
		}
		s.health.keys.Store(&prev.keys)
		s.cur, s.closing = prev, nil
	}, nil
}

// commit closes the listeners the reload left behind, and moves the
// host's registration to the new domain.
func (s *dnsService) commit() {
	s.srv.Unlisten(s.closing)
	s.closing = nil
	s.registerHost()
}

// registerHost registers the running domain with the host's resolver,
// replacing the registration of another domain.
func (s *dnsService) registerHost() {
	if s.hostDomain == s.cur.domain {
		return
	}
	if s.host != nil {
		s.host.remove()
		s.host = nil
	}
	if s.cur.domain != "" {
		s.host = registerHostDNS(s.n, s.cur)
	}
	s.hostDomain = s.cur.domain
}

func (s *dnsService) close() error {
	if s.host != nil {
		s.host.remove()
	}
	return s.srv.Close()
}

// upstreamsOf returns where names outside the domain go: dns_upstream, or
// the host's resolv.conf nameservers that are not this node's own.
func upstreamsOf(n *node, d dnsSettings) []netip.AddrPort {
	if d.upstreams != nil {
		return d.upstreams
	}
	own := make([]netip.Addr, len(d.listen))
	for i, ap := range d.listen {
		own[i] = ap.Addr()
	}
	ups, err := dnsserver.DefaultUpstreams(resolvConf, own)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		n.log.Warn("dns: cannot read the host's nameservers; names outside the domain are refused", "err", err)
	}
	if len(ups) == 0 {
		n.log.Info("dns: no upstream nameserver; names outside the domain are refused (hint: set [mesh] dns_upstream)")
	}
	return ups
}

// peerHealth tells the DNS server which nodes answer, from the engine's
// handshake state: a peer that left this node's handshakes unanswered for
// more than unreachableAfter is unreachable. Self, and a peer never tried,
// count as reachable.
type peerHealth struct {
	dev  *tunnel.Device
	keys atomic.Pointer[map[string]crypto.PublicKey] // replaced whole on a reload
}

// Reachable implements dnszone.Health. A peer it reports unreachable is
// probed, at most once per handshake timeout, so that it is handed out
// again soon after it answers, even when no traffic goes its way.
func (h *peerHealth) Reachable(node string) bool {
	key, ok := (*h.keys.Load())[node]
	if !ok {
		return true
	}
	p := h.dev.Peer(key)
	if p == nil || p.Unanswered() <= unreachableAfter {
		return true
	}
	p.Probe()
	return false
}

// addrPortDiff returns the addresses of a that are not in b.
func addrPortDiff(a, b []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ap := range a {
		if !slices.Contains(b, ap) {
			out = append(out, ap)
		}
	}
	return out
}
