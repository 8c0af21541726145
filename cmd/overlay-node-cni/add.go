package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node-cni/internal/lease"
)

// cmdAdd attaches the container: a lease of each family, the host bridge,
// the veth and, inside the container, its addresses and default routes.
// On failure it undoes what it did, so nothing is left half-configured.
func cmdAdd(args *skel.CmdArgs) (err error) {
	c, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	node, err := fetchNode(c)
	if err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("cannot open the container's network namespace %s", args.Netns), err.Error())
	}
	defer netns.Close()
	store, err := c.leases()
	if err != nil {
		return err
	}
	h := holder(args)
	defer func() {
		if err != nil {
			store.Release(h)
			netns.Do(func(ns.NetNS) error { return ip.DelLinkByName(args.IfName) })
		}
	}()

	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	for _, p := range node.Containers {
		a, err := store.Acquire(p, h)
		if errors.Is(err, lease.ErrExhausted) {
			return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("container network %s of node %q is full", p, node.Name), err.Error())
		}
		if err != nil {
			return types.NewError(types.ErrIOFailure, "cannot lease an address", err.Error())
		}
		gw := lease.Gateway(p)
		res.IPs = append(res.IPs, &current.IPConfig{Address: *ipNet(netip.PrefixFrom(a, p.Bits())), Gateway: gw.AsSlice()})
		def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if a.Is6() {
			def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		res.Routes = append(res.Routes, &types.Route{Dst: *ipNet(def), GW: gw.AsSlice()})
	}

	br, err := ensureBridge(c.Bridge, node)
	if err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("cannot set up bridge %s", c.Bridge), err.Error())
	}
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return types.NewError(types.ErrInternal, "cannot open the host's network namespace", err.Error())
	}
	defer hostNS.Close()
	var hostIf, contIf net.Interface
	err = netns.Do(func(ns.NetNS) error {
		var err error
		hostIf, contIf, err = ip.SetupVeth(args.IfName, node.MTU, "", hostNS)
		return err
	})
	if err != nil {
		return types.NewError(types.ErrInternal, "cannot create the veth pair", err.Error())
	}
	if err := joinBridge(hostIf.Name, br); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("cannot add %s to bridge %s", hostIf.Name, c.Bridge), err.Error())
	}
	res.Interfaces = []*current.Interface{
		{Name: br.Attrs().Name, Mac: br.Attrs().HardwareAddr.String()},
		{Name: hostIf.Name, Mac: hostIf.HardwareAddr.String()},
		{Name: contIf.Name, Mac: contIf.HardwareAddr.String(), Sandbox: args.Netns},
	}
	for _, ipc := range res.IPs {
		ipc.Interface = current.Int(2)
	}
	err = netns.Do(func(ns.NetNS) error {
		// Skip duplicate address detection: the lease makes the address
		// unique, and a tentative one would not be usable for a second.
		for _, ipc := range res.IPs {
			if ipc.Address.IP.To4() == nil {
				os.WriteFile(fmt.Sprintf("/proc/sys/net/ipv6/conf/%s/accept_dad", args.IfName), []byte("0"), 0o644)
			}
		}
		return ipam.ConfigureIface(args.IfName, res)
	})
	if err != nil {
		return types.NewError(types.ErrInternal, "cannot configure the container's interface", err.Error())
	}
	if d := dns(node); d != nil {
		res.DNS = *d
	}
	// Results of 1.0.0 and 1.1.0 have the same form; the version is the
	// config's.
	res.CNIVersion = c.CNIVersion
	return types.PrintResult(res, c.CNIVersion)
}

// ensureBridge creates the host bridge if need be and gives it the
// gateway address of every container network and the mesh MTU, and turns
// on forwarding. It is idempotent: concurrent ADDs may all call it.
func ensureBridge(name string, node *control.Node) (netlink.Link, error) {
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: node.MTU, TxQLen: -1}}
	if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	if _, ok := link.(*netlink.Bridge); !ok {
		return nil, fmt.Errorf("%s exists and is not a bridge", name)
	}
	if link.Attrs().MTU != node.MTU {
		if err := netlink.LinkSetMTU(link, node.MTU); err != nil {
			return nil, err
		}
	}
	for _, p := range node.Containers {
		if p.Addr().Is6() {
			os.WriteFile(fmt.Sprintf("/proc/sys/net/ipv6/conf/%s/accept_dad", name), []byte("0"), 0o644)
		}
		addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(lease.Gateway(p), p.Bits()))}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return nil, fmt.Errorf("address %s: %w", addr.IPNet, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, err
	}
	if err := ip.EnableIP4Forward(); err != nil {
		return nil, err
	}
	for _, p := range node.Containers {
		if p.Addr().Is6() {
			if err := ip.EnableIP6Forward(); err != nil {
				return nil, err
			}
		}
	}
	return link, nil
}

// joinBridge makes the host end of the veth a port of the bridge.
func joinBridge(hostIf string, br netlink.Link) error {
	link, err := netlink.LinkByName(hostIf)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMaster(link, br); err != nil {
		return err
	}
	return netlink.LinkSetUp(link)
}

// dns is what a container resolves with: the node's overlay addresses as
// nameservers and the mesh's domain to search, when the mesh has one.
func dns(node *control.Node) *types.DNS {
	if node.Domain == "" {
		return nil
	}
	d := &types.DNS{Domain: node.Domain, Search: []string{node.Domain}}
	for _, a := range node.Addresses {
		d.Nameservers = append(d.Nameservers, a.Addr().String())
	}
	return d
}

// ipNet converts p to the type CNI's results use.
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
