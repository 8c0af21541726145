package main

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/tunnel"
)

// resolveTimeout bounds one lookup of a peer's host name.
const resolveTimeout = 10 * time.Second

// A followedPeer is a peer whose endpoint is a host name that this node
// looks up again while it runs.
type followedPeer struct {
	name     string
	key      crypto.PublicKey
	hostport string         // as the mesh file writes it
	resolved netip.AddrPort // what start-up or the reload resolved it to
}

// followPlan is what the resolver does for one mesh file.
type followPlan struct {
	interval time.Duration
	peers    []followedPeer
}

// followedPeers picks the peers whose host name endpoints this node keeps
// resolving. A peer that moves finds us again by itself when it knows
// where we are: its next handshake or keepalive comes from its new
// address, and we roam to it. It cannot when we have no endpoint in the
// mesh file (we are behind NAT, say): then nothing but its host name says
// where it went, so only a node without an endpoint follows its peers'
// names. cfg holds what the names resolved to at load.
func followedPeers(mesh *config.Mesh, self *config.Node, cfg *tunnel.Config) followPlan {
	plan := followPlan{interval: mesh.ResolveInterval}
	if self.Endpoint != "" {
		return plan
	}
	for i := range mesh.Nodes {
		nd := &mesh.Nodes[i]
		if nd.Name == self.Name || nd.Endpoint == "" {
			continue
		}
		if _, err := netip.ParseAddrPort(nd.Endpoint); err == nil {
			continue // an address never moves
		}
		fp := followedPeer{name: nd.Name, key: nd.PublicKey, hostport: nd.Endpoint}
		for _, pc := range cfg.Peers {
			if pc.PublicKey.Equal(nd.PublicKey) {
				fp.resolved = pc.Endpoint
			}
		}
		plan.peers = append(plan.peers, fp)
	}
	return plan
}

// resolverService follows the host names of peers' endpoints (see
// followedPeers): it looks them up every resolve_interval, and at once
// for a peer whose handshake went unanswered, and points the engine at a
// name's new address. Lookups run on its own goroutine, never on the
// packet path.
type resolverService struct {
	// Guarded by mu: replaced by a reload.
	mu   sync.Mutex
	plan followPlan

	reset chan time.Duration // a reload's new interval
	stop  chan struct{}
	done  chan struct{}
}

func (s *resolverService) open(_ *node, st *meshState) error {
	s.plan = st.follow
	if s.plan.interval <= 0 {
		s.plan.interval = config.DefaultResolveInterval
	}
	s.reset = make(chan time.Duration, 1)
	return nil
}

// serve starts the loop; close stops it only if it started: a later
// service's failed open closes this one unserved.
func (s *resolverService) serve(n *node) {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.run(n)
}

func (s *resolverService) reload(_ *node, next *meshState) (func(), error) {
	s.mu.Lock()
	prev := s.plan
	s.plan = next.follow
	s.mu.Unlock()
	if next.follow.interval > 0 {
		s.setInterval(next.follow.interval)
	}
	return func() {
		s.mu.Lock()
		s.plan = prev
		s.mu.Unlock()
		if next.follow.interval > 0 {
			s.setInterval(prev.interval)
		}
	}, nil
}

// setInterval hands the run loop a new interval, replacing one it has not
// taken yet.
func (s *resolverService) setInterval(d time.Duration) {
	select {
	case <-s.reset:
	default:
	}
	s.reset <- d
}

func (s *resolverService) close() error {
	if s.stop != nil {
		close(s.stop)
		<-s.done
		s.stop = nil
	}
	return nil
}

func (s *resolverService) run(n *node) {
	defer close(s.done)
	s.mu.Lock()
	interval := s.plan.interval
	s.mu.Unlock()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case d := <-s.reset:
			tick.Reset(d)
		case <-tick.C:
			s.resolve(n, func(*followedPeer) bool { return true }, false)
		case key := <-n.unanswered:
			s.resolve(n, func(fp *followedPeer) bool { return fp.key.Equal(key) }, true)
		}
	}
}

// resolve looks up the names of the followed peers that match, and points
// the engine at each one whose name moved. After an unanswered handshake
// (always) it does so even when the name did not move: the peer may have
// roamed away from it, and its name is the best guess left.
func (s *resolverService) resolve(n *node, match func(*followedPeer) bool, always bool) {
	s.mu.Lock()
	var todo []followedPeer
	for i := range s.plan.peers {
		if match(&s.plan.peers[i]) {
			todo = append(todo, s.plan.peers[i])
		}
	}
	s.mu.Unlock()
	for _, fp := range todo {
		ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
		ap, err := config.ResolveEndpoint(ctx, fp.hostport)
		cancel()
		if err != nil {
			n.log.Warn("could not re-resolve a peer's endpoint; keeping the last address", "peer", fp.name, "endpoint", fp.hostport, "err", err)
			continue
		}
		if ap == fp.resolved && !always {
			continue
		}
		if err := n.dev.SetEndpoint(fp.key, ap); err != nil {
			continue // removed by a reload meanwhile
		}
		if ap != fp.resolved {
			n.log.Info("peer endpoint re-resolved", "peer", fp.name, "endpoint", fp.hostport, "from", fp.resolved.String(), "to", ap.String())
		}
		s.mu.Lock()
		for i := range s.plan.peers {
			if s.plan.peers[i].key.Equal(fp.key) {
				s.plan.peers[i].resolved = ap
			}
		}
		s.mu.Unlock()
	}
}
