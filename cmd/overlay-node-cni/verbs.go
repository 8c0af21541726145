package main

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	cniversion "github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/overlay-node/overlay-node/cmd/overlay-node-cni/internal/lease"
)

// cmdDel detaches the container: its veth goes (the host end with it) and
// its leases are released. It needs no running node, and succeeds however
// often it is called, also for a network namespace that is gone.
func cmdDel(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if args.Netns != "" {
		err := ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
			if err := ip.DelLinkByName(args.IfName); err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
				return err
			}
			return nil
		})
		var gone ns.NSPathNotExistErr
		if err != nil && !errors.As(err, &gone) {
			return types.NewError(types.ErrInternal, fmt.Sprintf("cannot delete %s in %s", args.IfName, args.Netns), err.Error())
		}
	}
	store, err := c.leases()
	if err != nil {
		return err
	}
	if err := store.Release(holder(args)); err != nil {
		return types.NewError(types.ErrIOFailure, "cannot release the container's addresses", err.Error())
	}
	return nil
}

// cmdCheck verifies that the container still has what ADD gave it: its
// interface with the mesh MTU, its addresses and its routes.
func cmdCheck(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if err := cniversion.ParsePrevResult(&c.NetConf); err != nil {
		return types.NewError(types.ErrDecodingFailure, "bad prevResult", err.Error())
	}
	if c.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs prevResult", "the runtime passes the result of ADD as prevResult")
	}
	prev, err := current.NewResultFromResult(c.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "bad prevResult", err.Error())
	}
	node, err := fetchNode(c)
	if err != nil {
		return err
	}
	leases, err := mustLeases(c)
	if err != nil {
		return err
	}
	for _, ipc := range prev.IPs {
		a, _ := netip.AddrFromSlice(ipc.Address.IP)
		if leases[a.Unmap()] != holder(args) {
			return types.NewError(types.ErrInternal, fmt.Sprintf("%s is not leased to this container", ipc.Address.IP), "delete and add the container again")
		}
	}
	err = ns.WithNetNSPath(args.Netns, func(ns.NetNS) error {
		link, err := netlink.LinkByName(args.IfName)
		if err != nil {
			return err
		}
		if mtu := link.Attrs().MTU; mtu != node.MTU {
			return fmt.Errorf("%s has MTU %d, the mesh %d", args.IfName, mtu, node.MTU)
		}
		if err := ip.ValidateExpectedInterfaceIPs(args.IfName, prev.IPs); err != nil {
			return err
		}
		return ip.ValidateExpectedRoute(prev.Routes)
	})
	if err != nil {
		return types.NewError(types.ErrInternal, "the container's interface is not as ADD left it", err.Error())
	}
	return nil
}

// mustLeases reads the network's leases.
func mustLeases(c *netConf) (map[netip.Addr]lease.Holder, error) {
	store, err := c.leases()
	if err != nil {
		return nil, err
	}
	leases, err := store.Leases()
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, "cannot read the leases", err.Error())
	}
	return leases, nil
}

// cmdStatus reports whether an ADD could succeed: a node runs on the
// interface and has container networks.
func cmdStatus(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if _, err := fetchNode(c); err != nil {
		var e *types.Error
		if errors.As(err, &e) {
			return types.NewError(errPluginNotAvailable, e.Msg, e.Details)
		}
		return types.NewError(errPluginNotAvailable, err.Error(), "")
	}
	return nil
}

// cmdGC releases the leases of every attachment not in the runtime's list
// of valid ones.
func cmdGC(args *skel.CmdArgs) error {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	store, err := c.leases()
	if err != nil {
		return err
	}
	valid := make([]lease.Holder, len(c.ValidAttachments))
	for i, a := range c.ValidAttachments {
		valid[i] = lease.Holder{ContainerID: a.ContainerID, IfName: a.IfName}
	}
	if err := store.Keep(valid); err != nil {
		return types.NewError(types.ErrIOFailure, "cannot release stale leases", err.Error())
	}
	return nil
}
