package main

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/routing"
)

// reload re-reads the mesh file on SIGHUP and applies it all or nothing:
// on any problem the running configuration stays as it was, and the log
// says why. Peers whose key is unchanged keep their sessions.
func (n *node) reload() {
	if err := n.tryReload(); err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				n.log.Error("reload: " + e.Error())
			}
			err = fmt.Errorf("%d problem(s) in %s", len(list), n.meshPath)
		}
		n.log.Error("reload failed; keeping the running configuration", "err", err)
	}
}

func (n *node) tryReload() error {
	mesh, err := config.Load(n.meshPath)
	if err != nil {
		return err
	}
	self, err := mesh.Self(n.key.PublicKey())
	if err != nil {
		return err
	}
	if what := n.fixed.changed(fixedOf(mesh, self)); what != "" {
		return fmt.Errorf("%s of node %q changes only on restart", what, self.Name)
	}
	cfg, err := engineConfig(mesh, self, n.key)
	if err != nil {
		return err
	}
	routes := kernelRoutes(mesh, self)
	add, del := prefixDiff(routes, n.routes), prefixDiff(n.routes, routes)
	if err := routing.ChangeRoutes(n.iface, add, nil); err != nil {
		return err
	}
	if err := n.dev.Reconfigure(cfg.Peers); err != nil {
		if rerr := routing.ChangeRoutes(n.iface, nil, add); rerr != nil {
			err = fmt.Errorf("%w (roll back routes: %w)", err, rerr)
		}
		return err
	}
	if err := routing.ChangeRoutes(n.iface, nil, del); err != nil {
		n.log.Warn("reload: could not remove old routes", "err", err)
	}
	n.routes = routes
	n.info = nodeInfo(mesh, self, n.iface, time.Now())
	n.ctl.SetNode(n.info)
	if n.col != nil {
		n.col.SetNode(n.info)
	}
	n.log.Info("mesh file reloaded", "mesh", mesh.Name, "hash", mesh.Hash, "peers", len(cfg.Peers),
		"routes_added", len(add), "routes_removed", len(del))
	return nil
}

// nodeInfo is what status and metrics say about this node and the mesh
// file in use.
func nodeInfo(mesh *config.Mesh, self *config.Node, iface string, loaded time.Time) control.Node {
	return control.Node{Version: version, Mesh: mesh.Name, Name: self.Name, Interface: iface,
		ConfigHash: mesh.Hash, LoadedAt: loaded}
}

// fixedSettings are what a running node cannot change: the interface's
// MTU and addresses and the UDP port.
type fixedSettings struct {
	mtu   int
	port  uint16
	addrs []netip.Prefix
}

func fixedOf(mesh *config.Mesh, self *config.Node) fixedSettings {
	return fixedSettings{mtu: mesh.MTU, port: self.Port, addrs: self.Addresses}
}

// changed names the first setting that differs in next, or returns "".
func (f fixedSettings) changed(next fixedSettings) string {
	switch {
	case next.mtu != f.mtu:
		return "the MTU"
	case next.port != f.port:
		return "the listen port"
	case !slices.Equal(next.addrs, f.addrs):
		return "the address"
	}
	return ""
}

// prefixDiff returns the prefixes of a that are not in b.
func prefixDiff(a, b []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a {
		if !slices.Contains(b, p) {
			out = append(out, p)
		}
	}
	return out
}
