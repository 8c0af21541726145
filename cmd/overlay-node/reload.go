package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/meshsource"
	"github.com/overlay-node/overlay-node/config"
)

// reread reads the mesh from its source again, on SIGHUP, and reloads it.
func (n *node) reread() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snap, err := n.src.Read(ctx)
	if err != nil {
		n.log.Error("reload failed; keeping the running configuration", "err", err)
		return
	}
	n.reload(snap)
}

// reload applies a mesh from the source, all or nothing: on any problem
// the running configuration stays as it was, and the log says why. Peers
// whose key is unchanged keep their sessions. A file re-read on SIGHUP, a
// watched file that changed and a new etcd revision all come here.
func (n *node) reload(snap meshsource.Snapshot) {
	if err := n.tryReload(&snap); err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				n.log.Error("reload: " + e.Error())
			}
			err = fmt.Errorf("%d problem(s) in %s", len(list), snap.Name)
		}
		n.log.Error("reload failed; keeping the running configuration", "err", err)
	}
}

func (n *node) tryReload(snap *meshsource.Snapshot) error {
	next, err := n.load(snap)
	if err != nil {
		return err
	}
	if what := n.fixed.changed(next.fixed); what != "" {
		return fmt.Errorf("%s of node %q changes only on restart", what, next.info.Name)
	}
	if err := n.services.reload(n, next); err != nil {
		return err
	}
	n.fixed = next.fixed
	n.applied(*snap)
	n.log.Info("mesh file reloaded", "mesh", next.info.Mesh, "source", next.info.Source,
		"revision", next.info.Revision, "hash", next.info.ConfigHash, "peers", next.peers,
		"rules", next.engine.Firewall.Policy.Rules(), "policy_hash", next.engine.Firewall.Policy.Hash())
	return nil
}

// nodeInfo is what status and metrics say about this node and the mesh
// file in use, and what the CNI plugin hands to containers.
func nodeInfo(mesh *config.Mesh, self *config.Node, iface string, loaded time.Time, revision int64) control.Node {
	return control.Node{Version: version, Mesh: mesh.Name, Name: self.Name, Interface: iface,
		ConfigHash: mesh.Hash, LoadedAt: loaded, MeshFile: mesh.Path, Revision: revision,
		MTU: mesh.MTU, Addresses: self.Addresses, Subnets: slices.Concat(self.Subnets, self.Containers), Routes: kernelRoutes(mesh, self),
		Containers: self.Containers, Domain: mesh.Domain, DNS: dnsInfo(mesh, self)}
}

// fixedSettings are what a running node cannot change: the interface's
// MTU and addresses, the UDP port, and the size of the firewall's
// connection table (a new size would mean a new table, and every tracked
// flow cut).
type fixedSettings struct {
	mtu          int
	port         uint16
	addrs        []netip.Prefix
	conntrackMax int
}

func fixedOf(mesh *config.Mesh, self *config.Node) fixedSettings {
	return fixedSettings{mtu: mesh.MTU, port: self.Port, addrs: self.Addresses, conntrackMax: mesh.ConntrackMax}
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
	case next.conntrackMax != f.conntrackMax:
		return "[mesh] conntrack_max"
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
