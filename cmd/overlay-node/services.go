package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/metrics"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/uapi"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/routing"
	"github.com/overlay-node/overlay-node/tunnel"
)

// nodeServices are the services of a node, in the order they start. The
// order carries guarantees:
//   - The sockets are claimed before anything else: the UAPI socket path is
//     global across network namespaces, so it is what tells a second daemon
//     on this interface name to fail at once, before it touches the
//     interface.
//   - The DNS server binds once the interface has its addresses, which it
//     serves, and the engine runs, whose handshakes tell it which nodes
//     answer.
//   - The metrics endpoint binds once the interface has its addresses: its
//     address may be this node's overlay address, for a Prometheus that
//     scrapes over the mesh.
func nodeServices() []service {
	return []service{
		&uapiService{},
		&controlService{},
		&engineService{},
		&resolverService{},
		&dnsService{},
		&metricsService{},
	}
}

// uapiService answers WireGuard's UAPI, for wg show and wgctrl.
type uapiService struct{ srv *uapi.Server }

func (s *uapiService) open(n *node, _ *meshState) (err error) {
	s.srv, err = uapi.Listen(n.iface)
	return socketHint(err)
}

func (s *uapiService) serve(n *node) { s.srv.Serve(n.dev, n.log) }

// reload has nothing to do: the socket reads the engine, which the engine
// service reloads.
func (s *uapiService) reload(*node, *meshState) (func(), error) { return noUndo, nil }

func (s *uapiService) close() error { return s.srv.Close() }

// controlService answers overlay-node status and policy why.
type controlService struct {
	srv  *control.Server
	info control.Node // what it says about this node
	why  control.Why  // answers policy why with the names of the mesh in use
}

func (s *controlService) open(n *node, st *meshState) (err error) {
	s.info, s.why = st.info, whyOf(n, st)
	s.srv, err = control.Listen(control.SocketPath(n.iface))
	return socketHint(err)
}

func (s *controlService) serve(n *node) {
	s.srv.SetWhy(s.why)
	s.srv.Serve(func(info control.Node) control.Status {
		return newStatus(n.dev.Snapshot(), info, time.Now())
	}, s.info, n.log)
}

func (s *controlService) reload(n *node, next *meshState) (func(), error) {
	prev, prevWhy := s.info, s.why
	s.info, s.why = next.info, whyOf(n, next)
	s.srv.SetNode(s.info)
	s.srv.SetWhy(s.why)
	return func() { s.info, s.why = prev, prevWhy; s.srv.SetNode(prev); s.srv.SetWhy(prevWhy) }, nil
}

// whyOf answers policy why with the rules the engine has loaded, naming
// the nodes of st.
func whyOf(n *node, st *meshState) control.Why {
	return func(from, to, port string) ([]string, error) {
		return explainFlow(n.dev.Policy(), st.names, st.info.MeshFile, from, to, port)
	}
}

func (s *controlService) close() error { return s.srv.Close() }

// engineService is the tunnel: the TUN interface with its addresses and
// routes, and the engine that forwards through it.
type engineService struct {
	dev       *tunnel.Device
	undoIface func() error // removes the addresses and routes

	// What runs: kept to put it back if a later service's reload fails.
	peers    []tunnel.PeerConfig
	firewall tunnel.Firewall
	routes   []netip.Prefix
}

func (s *engineService) open(n *node, st *meshState) (err error) {
	if _, err := net.InterfaceByName(n.iface); err == nil {
		return fmt.Errorf("interface %s is in use: it already exists (hint: stop the overlay-node running on it, or pass --interface NAME)", n.iface)
	}
	tdev, err := tun.CreateTUN(n.iface, st.fixed.mtu)
	if err != nil {
		return fmt.Errorf("create TUN %s: %w (hint: run as root)", n.iface, err)
	}
	s.dev, err = tunnel.New(tdev, encap.NewBind(), st.engine, tunnel.Options{
		Logger: n.log,
		HandshakeUnanswered: func(key crypto.PublicKey) {
			select {
			case n.unanswered <- key:
			default:
			}
		},
	})
	if err != nil {
		tdev.Close()
		return err
	}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.undoIface, err = routing.ConfigureInterface(n.iface, st.fixed.mtu, st.fixed.addrs, st.routes)
	if err != nil {
		return err
	}
	if err := s.dev.Up(); err != nil {
		return err
	}
	s.peers, s.firewall, s.routes = st.engine.Peers, st.engine.Firewall, st.routes
	n.dev = s.dev
	return nil
}

func (s *engineService) serve(*node) {}

// reload adds the new routes before the engine takes the new peers and
// rules (in one step), and removes the old ones after, so that no packet
// to a prefix in both meshes finds no route. Peers whose key is unchanged
// keep their sessions, tracked flows are re-checked against the new rules
// at their next packet; an undo cannot give back the sessions of peers
// the reload removed, nor flows it cut.
func (s *engineService) reload(n *node, next *meshState) (func(), error) {
	prevPeers, prevFirewall, prevRoutes := s.peers, s.firewall, s.routes
	add, del := prefixDiff(next.routes, prevRoutes), prefixDiff(prevRoutes, next.routes)
	if err := routing.ChangeRoutes(n.iface, add, nil); err != nil {
		return nil, err
	}
	if err := s.dev.Reload(next.engine.Peers, next.engine.Firewall); err != nil {
		if rerr := routing.ChangeRoutes(n.iface, nil, add); rerr != nil {
			err = fmt.Errorf("%w (roll back routes: %w)", err, rerr)
		}
		return nil, err
	}
	if err := routing.ChangeRoutes(n.iface, nil, del); err != nil {
		n.log.Warn("reload: could not remove old routes", "err", err)
	}
	s.peers, s.firewall, s.routes = next.engine.Peers, next.engine.Firewall, next.routes
	n.log.Info("routes changed", "added", len(add), "removed", len(del))
	return func() {
		if err := routing.ChangeRoutes(n.iface, del, nil); err != nil {
			n.log.Error("reload rollback: could not restore routes", "err", err)
		}
		if err := s.dev.Reload(prevPeers, prevFirewall); err != nil {
			n.log.Error("reload rollback: could not restore peers and rules", "err", err)
		}
		if err := routing.ChangeRoutes(n.iface, nil, add); err != nil {
			n.log.Warn("reload rollback: could not remove new routes", "err", err)
		}
		s.peers, s.firewall, s.routes = prevPeers, prevFirewall, prevRoutes
	}, nil
}

// close takes the interface's addresses and routes away, then closes the
// engine and with it the TUN device.
func (s *engineService) close() error {
	var err error
	if s.undoIface != nil {
		err = s.undoIface()
	}
	return errors.Join(err, s.dev.Close())
}

// metricsService serves Prometheus metrics on --metrics; without it, it
// does nothing.
type metricsService struct {
	srv  *metrics.Server
	col  *metrics.Collector
	info control.Node // what it says about this node
}

func (s *metricsService) open(n *node, st *meshState) (err error) {
	if n.metricsAddr == "" {
		return nil
	}
	s.srv, err = metrics.Listen(n.metricsAddr)
	if err != nil {
		return err
	}
	s.info = st.info
	s.col = metrics.NewCollector(n.dev, s.info)
	return nil
}

func (s *metricsService) serve(n *node) {
	if s.srv != nil {
		s.srv.Serve(metrics.NewRegistry(s.col, metrics.NewDNSCollector(n.dnsStats)), n.log)
	}
}

func (s *metricsService) reload(_ *node, next *meshState) (func(), error) {
	if s.col == nil {
		return noUndo, nil
	}
	prev := s.info
	s.info = next.info
	s.col.SetNode(s.info)
	return func() { s.info = prev; s.col.SetNode(prev) }, nil
}

func (s *metricsService) close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}
