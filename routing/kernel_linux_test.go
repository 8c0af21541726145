package routing

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// enterNetns moves the test goroutine, pinned to its OS thread, into a new
// network namespace for the rest of the test, so the host's network is never
// touched, and returns a netlink handle there. The namespace has no name: it
// disappears with its last reference, even if the test dies.
//
// Subtests run on goroutines of their own, so each calls enterNetns.
func enterNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	requireRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current network namespace: %v", err)
	}
	ns, err := netns.New() // also switches this thread into it
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("create network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Keep the thread locked: the runtime then discards it when
			// the goroutine ends, namespace and all.
			t.Errorf("return to the original network namespace: %v", err)
		} else {
			runtime.UnlockOSThread()
		}
		ns.Close()
		orig.Close()
	})
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatalf("open netlink: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces with TUN and veth links")
	}
}

// addLink creates a link of the given kind ("tun" or "veth") and deletes it
// when the test ends.
func addLink(t *testing.T, h *netlink.Handle, kind, name string) netlink.Link {
	t.Helper()
	var link netlink.Link
	switch kind {
	case "tun":
		// Not persistent, like the daemon's device: it lives as long as
		// its file descriptor.
		tun := &netlink.Tuntap{
			LinkAttrs:  netlink.LinkAttrs{Name: name},
			Mode:       netlink.TUNTAP_MODE_TUN,
			Flags:      netlink.TUNTAP_NO_PI,
			NonPersist: true,
			Queues:     1, // keep the descriptor open
		}
		if err := h.LinkAdd(tun); err != nil {
			t.Fatalf("create tun %s: %v", name, err)
		}
		t.Cleanup(func() {
			for _, f := range tun.Fds {
				f.Close()
			}
		})
		link = tun
	case "veth":
		// An Ethernet-like link, unlike a TUN: it gets an IPv6 link-local
		// address and runs duplicate address detection.
		link = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
		if err := h.LinkAdd(link); err != nil {
			t.Fatalf("create veth %s: %v", name, err)
		}
		t.Cleanup(func() { h.LinkDel(link) })
	default:
		t.Fatalf("unknown link kind %q", kind)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find new link %s: %v", name, err)
	}
	return link
}

// linkState is what ConfigureInterface may change on a link.
type linkState struct {
	MTU    int
	Up     bool
	Addrs  []string // "10.100.0.1/24"
	Routes []string // main table, "172.20.1.0/24 boot"
}

func stateOf(t *testing.T, h *netlink.Handle, name string) linkState {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("find link %s: %v", name, err)
	}
	s := linkState{MTU: link.Attrs().MTU, Up: link.Attrs().Flags&net.FlagUp != 0}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatalf("list addresses of %s: %v", name, err)
	}
	for _, a := range addrs {
		s.Addrs = append(s.Addrs, a.IPNet.String())
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{LinkIndex: link.Attrs().Index}, netlink.RT_FILTER_OIF)
	if err != nil {
		t.Fatalf("list routes of %s: %v", name, err)
	}
	for _, r := range routes {
		s.Routes = append(s.Routes, fmt.Sprintf("%s %s", r.Dst, r.Protocol))
	}
	slices.Sort(s.Addrs)
	slices.Sort(s.Routes)
	return s
}

func prefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

func TestConfigureInterface(t *testing.T) {
	requireRoot(t)
	for _, kind := range []string{"tun", "veth"} {
		t.Run(kind, func(t *testing.T) {
			h := enterNetns(t)
			addLink(t, h, kind, "ovl0")

			addrs := prefixes("10.100.0.1/24", "fd00:100::1/64")
			routes := prefixes(
				"10.100.0.0/24",  // connected: skipped
				"172.20.1.0/24",  //
				"172.20.1.7/24",  // same prefix again: skipped
				"10.200.0.0/16",  //
				"fd00:100::/64",  // connected: skipped
				"fd00:200::/48",  //
				"192.0.2.9/32",   // a host behind a peer
				"2001:db8::/128", //
			)
			undo, err := ConfigureInterface("ovl0", 1380, addrs, routes)
			if err != nil {
				t.Fatalf("ConfigureInterface: %v", err)
			}

			s := stateOf(t, h, "ovl0")
			if s.MTU != 1380 || !s.Up {
				t.Errorf("link after configure: got mtu %d up %t, want mtu 1380 up true", s.MTU, s.Up)
			}
			for _, want := range []string{"10.100.0.1/24", "fd00:100::1/64"} {
				if !slices.Contains(s.Addrs, want) {
					t.Errorf("addresses after configure: got %v, want %s among them", s.Addrs, want)
				}
			}
			var added []string
			for _, r := range s.Routes {
				if !slices.Contains([]string{"10.100.0.0/24 kernel", "fd00:100::/64 kernel", "fe80::/64 kernel"}, r) {
					added = append(added, r)
				}
			}
			wantAdded := []string{
				"10.200.0.0/16 boot",
				"172.20.1.0/24 boot",
				"192.0.2.9/32 boot",
				"2001:db8::/128 boot",
				"fd00:200::/48 boot",
			}
			if !slices.Equal(added, wantAdded) {
				t.Errorf("routes added: got %v, want %v (all routes: %v)", added, wantAdded, s.Routes)
			}
			for _, want := range []string{"10.100.0.0/24 kernel", "fd00:100::/64 kernel"} {
				if !slices.Contains(s.Routes, want) {
					t.Errorf("connected routes: got %v, want %s among them", s.Routes, want)
				}
			}

			if err := undo(); err != nil {
				t.Fatalf("undo: %v", err)
			}
			s = stateOf(t, h, "ovl0")
			for _, a := range s.Addrs {
				if a == "10.100.0.1/24" || a == "fd00:100::1/64" {
					t.Errorf("addresses after undo: got %v, want no %s", s.Addrs, a)
				}
			}
			for _, r := range s.Routes {
				if r != "fe80::/64 kernel" {
					t.Errorf("routes after undo: got %v, want none but link-local", s.Routes)
					break
				}
			}
			// The MTU and the link state belong to the link's owner.
			if s.MTU != 1380 || !s.Up {
				t.Errorf("link after undo: got mtu %d up %t, want mtu 1380 up true", s.MTU, s.Up)
			}
			if err := undo(); err != nil {
				t.Errorf("second undo: got %v, want nil", err)
			}
		})
	}
}

func TestConfigureInterfaceKeepsExisting(t *testing.T) {
	requireRoot(t)
	h := enterNetns(t)
	link := addLink(t, h, "tun", "ovl0")
	if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("10.100.0.1/24"))}); err != nil {
		t.Fatalf("add address: %v", err)
	}
	undo, err := ConfigureInterface("ovl0", 1420, prefixes("10.100.0.1/24", "10.101.0.1/24"), nil)
	if err != nil {
		t.Fatalf("ConfigureInterface: %v", err)
	}
	if err := undo(); err != nil {
		t.Fatalf("undo: %v", err)
	}
	s := stateOf(t, h, "ovl0")
	if !slices.Contains(s.Addrs, "10.100.0.1/24") || slices.Contains(s.Addrs, "10.101.0.1/24") {
		t.Errorf("addresses after undo: got %v, want 10.100.0.1/24 (there before) and not 10.101.0.1/24", s.Addrs)
	}
}

func TestConfigureInterfaceUndoAfterLinkGone(t *testing.T) {
	requireRoot(t)
	h := enterNetns(t)
	link := addLink(t, h, "tun", "ovl0")
	undo, err := ConfigureInterface("ovl0", 1420, prefixes("10.100.0.1/24", "fd00:100::1/64"), prefixes("172.20.1.0/24", "fd00:200::/48"))
	if err != nil {
		t.Fatalf("ConfigureInterface: %v", err)
	}
	if err := h.LinkDel(link); err != nil {
		t.Fatalf("delete link: %v", err)
	}
	if err := undo(); err != nil {
		t.Errorf("undo after the link was deleted: got %v, want nil", err)
	}
}

func TestConfigureInterfaceRollback(t *testing.T) {
	requireRoot(t)
	addrs := prefixes("10.100.0.1/24", "fd00:100::1/64")
	tests := []struct {
		name    string
		link    string
		setup   func(t *testing.T, h *netlink.Handle)
		routes  []netip.Prefix
		wantErr string
		wantIs  error
	}{
		{
			name:    "ipv4 route taken by another link",
			link:    "ovl0",
			routes:  prefixes("172.20.1.0/24", "fd00:300::/48", "10.200.0.0/16"),
			wantErr: "add route 10.200.0.0/16 dev ovl0: file exists",
			wantIs:  unix.EEXIST,
		},
		{
			name:    "ipv6 route taken by another link",
			link:    "ovl0",
			routes:  prefixes("172.20.1.0/24", "fd00:200::/48"),
			wantErr: "add route fd00:200::/48 dev ovl0: file exists",
			wantIs:  unix.EEXIST,
		},
		{
			name: "ipv6 disabled on the link",
			link: "ovl0",
			setup: func(t *testing.T, h *netlink.Handle) {
				// /proc/sys/net follows the namespace of the opening thread,
				// which is the test's.
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/ovl0/disable_ipv6", []byte("1"), 0); err != nil {
					t.Fatalf("disable ipv6: %v", err)
				}
			},
			routes:  prefixes("172.20.1.0/24"),
			wantErr: "add address fd00:100::1/64 dev ovl0: permission denied",
			wantIs:  unix.EACCES,
		},
		{
			name:    "no such link",
			link:    "nope0",
			wantErr: "find link nope0: Link not found",
		},
		{
			name:    "invalid route",
			link:    "ovl0",
			routes:  []netip.Prefix{{}},
			wantErr: `configure ovl0: invalid route "invalid Prefix"`,
		},
		{
			name:    "mapped address",
			link:    "ovl0",
			routes:  prefixes("::ffff:10.0.0.0/104"),
			wantErr: "configure ovl0: route ::ffff:10.0.0.0/104: IPv4-mapped IPv6 is not supported, use the IPv4 form",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := enterNetns(t)
			addLink(t, h, "tun", "ovl0")
			other := addLink(t, h, "tun", "other0")
			if err := h.LinkSetUp(other); err != nil {
				t.Fatalf("set other0 up: %v", err)
			}
			for _, p := range prefixes("10.200.0.0/16", "fd00:200::/48") {
				if err := h.RouteAdd(&netlink.Route{LinkIndex: other.Attrs().Index, Dst: ipNet(p)}); err != nil {
					t.Fatalf("add route %s dev other0: %v", p, err)
				}
			}
			if tt.setup != nil {
				tt.setup(t, h)
			}
			before, otherBefore := stateOf(t, h, "ovl0"), stateOf(t, h, "other0")

			undo, err := ConfigureInterface(tt.link, 1380, addrs, tt.routes)
			if err == nil {
				undo()
				t.Fatalf("ConfigureInterface: got no error, want %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error: got %q, want %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v): got false, want true", err, tt.wantIs)
			}
			if undo != nil {
				t.Errorf("undo on error: got non-nil, want nil")
			}
			if after := stateOf(t, h, "ovl0"); !equalState(after, before) {
				t.Errorf("ovl0 after failed configure: got %+v, want %+v", after, before)
			}
			if after := stateOf(t, h, "other0"); !equalState(after, otherBefore) {
				t.Errorf("other0 after failed configure: got %+v, want %+v", after, otherBefore)
			}
		})
	}
}

func equalState(a, b linkState) bool {
	return a.MTU == b.MTU && a.Up == b.Up && slices.Equal(a.Addrs, b.Addrs) && slices.Equal(a.Routes, b.Routes)
}

func TestChangeRoutes(t *testing.T) {
	h := enterNetns(t)
	addLink(t, h, "tun", "ovlr0")
	undo, err := ConfigureInterface("ovlr0", 1420, prefixes("10.100.0.1/24"), prefixes("172.20.1.0/24", "172.20.2.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	if err := ChangeRoutes("ovlr0", prefixes("172.20.3.0/24"), prefixes("172.20.1.0/24")); err != nil {
		t.Fatal(err)
	}
	got := stateOf(t, h, "ovlr0").Routes
	// No fe80::/64: the interface gets no IPv6 link-local address.
	want := []string{"10.100.0.0/24 kernel", "172.20.2.0/24 boot", "172.20.3.0/24 boot"}
	if !slices.Equal(got, want) {
		t.Errorf("got routes %v, want %v", got, want)
	}

	// A failing add (172.20.2.0/24 exists) leaves the routes as they were.
	before := stateOf(t, h, "ovlr0")
	err = ChangeRoutes("ovlr0", prefixes("172.20.4.0/24", "172.20.2.0/24"), prefixes("172.20.3.0/24"))
	if !errors.Is(err, unix.EEXIST) {
		t.Fatalf("got %v, want EEXIST", err)
	}
	if after := stateOf(t, h, "ovlr0"); !slices.Equal(after.Routes, before.Routes) {
		t.Errorf("failed change left routes %v, want %v", after.Routes, before.Routes)
	}
}
