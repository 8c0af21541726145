package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ConfigureInterface prepares the overlay interface name for traffic. In
// order, it
//
//   - sets the link MTU to mtu;
//   - assigns each of addrs as given: 10.100.0.1/24 assigns 10.100.0.1 and
//     the kernel adds the connected route 10.100.0.0/24 itself;
//   - brings the link up;
//   - adds a route through the link for each of routes, skipping repeats and
//     any route equal to the connected prefix of one of addrs (the kernel
//     already has it). Host bits of a route are ignored.
//
// IPv6 works the same way. IPv6 addresses are added without duplicate
// address detection: overlay addresses are unique by configuration, and a
// tentative address would hold up the first packets. An address the link
// already has is left in place and is not counted as added.
//
// The returned undo removes exactly the routes and addresses that
// ConfigureInterface added, routes first. It leaves the MTU and the link
// state to the link's owner, treats an item that is already gone (for
// example because the link was deleted) as removed, and does nothing on
// later calls. Undo acts in the network namespace ConfigureInterface ran in,
// whichever thread calls it.
//
// On error ConfigureInterface rolls back everything it did, the MTU and the
// link state included, and returns an error that names the failed step, such
// as "add route 172.20.1.0/24 dev ovl0: file exists". Kernel errors are
// wrapped, so errors.Is(err, unix.EEXIST) works.
func ConfigureInterface(name string, mtu int, addrs []netip.Prefix, routes []netip.Prefix) (undo func() error, err error) {
	if err := validate(mtu, addrs, routes); err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	// A handle owns its socket, which stays in the namespace it was opened
	// in; undo therefore needs no thread pinning.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("configure %s: open netlink: %w", name, err)
	}
	c := &kernelConfig{h: h, name: name}
	if err := c.apply(mtu, addrs, routes); err != nil {
		if rerr := c.rollback(); rerr != nil {
			err = fmt.Errorf("%w (roll back: %w)", err, rerr)
		}
		h.Close()
		return nil, err
	}
	var once sync.Once
	return func() (err error) {
		once.Do(func() {
			err = errors.Join(c.removeRoutes(), c.removeAddrs())
			h.Close()
		})
		return err
	}, nil
}

// validate rejects arguments the kernel would misread, before anything is
// changed.
func validate(mtu int, addrs, routes []netip.Prefix) error {
	if mtu <= 0 {
		return fmt.Errorf("invalid mtu %d", mtu)
	}
	return errors.Join(validatePrefixes("address", addrs), validatePrefixes("route", routes))
}

// validatePrefixes checks prefixes netlink would mishandle.
func validatePrefixes(what string, ps []netip.Prefix) error {
	for _, p := range ps {
		switch {
		case !p.IsValid():
			return fmt.Errorf("invalid %s %q", what, p)
		case p.Addr().Is4In6():
			// Netlink would take it for IPv4 and apply a 128-bit length.
			return fmt.Errorf("%s %s: IPv4-mapped IPv6 is not supported, use the IPv4 form", what, p)
		}
	}
	return nil
}

// kernelConfig records what ConfigureInterface changed, so that undo and
// rollback reverse exactly that.
type kernelConfig struct {
	h    *netlink.Handle
	name string
	link netlink.Link

	oldMTU     int
	mtuChanged bool
	broughtUp  bool
	addrs      []*netlink.Addr  // added by us, in order
	routes     []*netlink.Route // added by us, in order
}

func (c *kernelConfig) apply(mtu int, addrs, routes []netip.Prefix) error {
	link, err := c.h.LinkByName(c.name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", c.name, err)
	}
	c.link = link
	attrs := link.Attrs()

	if attrs.MTU != mtu {
		if err := c.h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set mtu %d dev %s: %w", mtu, c.name, err)
		}
		c.oldMTU, c.mtuChanged = attrs.MTU, true
	}

	have, err := c.assigned()
	if err != nil {
		return err
	}
	for _, p := range addrs {
		if have[p] {
			continue
		}
		a := &netlink.Addr{IPNet: ipNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := c.h.AddrAdd(link, a); err != nil {
			return fmt.Errorf("add address %s dev %s: %w", p, c.name, err)
		}
		c.addrs = append(c.addrs, a)
		have[p] = true
	}

	if attrs.Flags&net.FlagUp == 0 {
		// No IPv6 link-local address, as on a kernel WireGuard interface:
		// the kernel would otherwise send router solicitations into the
		// overlay, where no peer owns ff02::2 and they count as drops.
		// Best effort: it fails only where IPv6 is off.
		_ = c.h.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE)
		if err := c.h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set link %s up: %w", c.name, err)
		}
		c.broughtUp = true
	}

	skip := make(map[netip.Prefix]bool, len(addrs)+len(routes))
	for _, p := range addrs {
		skip[p.Masked()] = true // connected: the kernel routes it
	}
	for _, p := range routes {
		p = p.Masked()
		if skip[p] {
			continue
		}
		skip[p] = true
		r := c.route(p)
		if err := c.h.RouteAdd(r); err != nil {
			return fmt.Errorf("add route %s dev %s: %w", p, c.name, err)
		}
		c.routes = append(c.routes, r)
	}
	return nil
}

// assigned returns the addresses the link has now.
func (c *kernelConfig) assigned() (map[netip.Prefix]bool, error) {
	have := make(map[netip.Prefix]bool)
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := c.h.AddrList(c.link, family)
		if err != nil {
			return nil, fmt.Errorf("list addresses dev %s: %w", c.name, err)
		}
		for _, a := range list {
			if p, ok := prefixOf(a.IPNet, family); ok {
				have[p] = true
			}
		}
	}
	return have, nil
}

// removeRoutes deletes the routes that apply added, newest first. Routes
// already gone count as removed.
func (c *kernelConfig) removeRoutes() error {
	var errs []error
	for i := len(c.routes) - 1; i >= 0; i-- {
		r := c.routes[i]
		if err := c.h.RouteDel(r); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("delete route %s dev %s: %w", r.Dst, c.name, err))
		}
	}
	c.routes = nil
	return errors.Join(errs...)
}

// removeAddrs deletes the addresses that apply added, newest first.
// Addresses already gone count as removed.
func (c *kernelConfig) removeAddrs() error {
	var errs []error
	for i := len(c.addrs) - 1; i >= 0; i-- {
		a := c.addrs[i]
		if err := c.h.AddrDel(c.link, a); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("delete address %s dev %s: %w", a.IPNet, c.name, err))
		}
	}
	c.addrs = nil
	return errors.Join(errs...)
}

// rollback reverses a partial apply, in reverse order: routes, link state,
// addresses, MTU.
func (c *kernelConfig) rollback() error {
	errs := []error{c.removeRoutes()}
	if c.broughtUp {
		if err := c.h.LinkSetDown(c.link); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("set link %s down: %w", c.name, err))
		}
	}
	errs = append(errs, c.removeAddrs())
	if c.mtuChanged {
		if err := c.h.LinkSetMTU(c.link, c.oldMTU); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("restore mtu %d dev %s: %w", c.oldMTU, c.name, err))
		}
	}
	return errors.Join(errs...)
}

// gone reports whether err means the item to remove no longer exists.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || // no such route
		errors.Is(err, unix.EADDRNOTAVAIL) || // no such address
		errors.Is(err, unix.ENODEV) // no such link
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

func prefixOf(n *net.IPNet, family int) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip := n.IP
	if family == netlink.FAMILY_V4 {
		ip = ip.To4()
	} else {
		ip = ip.To16()
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a, bits), true
}

// ChangeRoutes updates the routes through the interface name on a reload:
// it adds each of add, then deletes each of del. If an add fails, the adds
// already made are removed again and nothing is deleted, so the routes are
// as before. A route to delete that is already gone counts as deleted.
func ChangeRoutes(name string, add, del []netip.Prefix) error {
	if err := errors.Join(validatePrefixes("route", add), validatePrefixes("route", del)); err != nil {
		return fmt.Errorf("change routes %s: %w", name, err)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("change routes %s: open netlink: %w", name, err)
	}
	defer h.Close()
	c := &kernelConfig{h: h, name: name}
	if c.link, err = h.LinkByName(name); err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	for _, p := range add {
		r := c.route(p)
		if err := h.RouteAdd(r); err != nil {
			err = fmt.Errorf("add route %s dev %s: %w", p.Masked(), name, err)
			if rerr := c.removeRoutes(); rerr != nil {
				err = fmt.Errorf("%w (roll back: %w)", err, rerr)
			}
			return err
		}
		c.routes = append(c.routes, r)
	}
	c.routes = nil
	for _, p := range del {
		c.routes = append(c.routes, c.route(p))
	}
	return c.removeRoutes()
}

// route is the route for p through the link, as `ip route add p dev NAME`.
func (c *kernelConfig) route(p netip.Prefix) *netlink.Route {
	p = p.Masked()
	r := &netlink.Route{
		LinkIndex: c.link.Attrs().Index,
		Dst:       ipNet(p),
		Protocol:  unix.RTPROT_BOOT,
	}
	if p.Addr().Is4() {
		r.Scope = netlink.SCOPE_LINK // no gateway: the destination is on the link
	}
	return r
}
