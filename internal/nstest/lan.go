package nstest

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// Addressing. Every LAN and site has a namespace of its own, so these fixed
// private ranges never meet the host's or another test's.
var (
	// lanSubnet is the subnet of every LAN; host i (from 1) has address .i.
	lanSubnet = netip.MustParsePrefix("192.168.100.0/24")
	// siteBase is the first site subnet; site k (from 1) is 10.231.k.0/24.
	siteBase = netip.MustParseAddr("10.231.0.0")
)

// A LAN is a set of host namespaces, each with a veth into one bridge that
// lives in a namespace of its own: a switch with n ports. Its methods are for
// the goroutine of the test that made it.
type LAN struct {
	// Prefix starts the name of every namespace of this LAN, and no other's.
	Prefix string
	// Hosts are the host namespaces; Hosts[i] is 192.168.100.(i+1)/24.
	Hosts []*Host

	t      testing.TB
	bridge string // namespace holding br0
	sites  int    // sites added so far
}

// A Host is a network namespace with one interface, Iface, addressed on a LAN
// or site subnet. Its loopback is up. It is not safe to change its fields.
type Host struct {
	Name   string       // network namespace name, as in ip netns
	Iface  string       // the interface on Subnet: eth0
	Addr   netip.Addr   // Iface's address
	Subnet netip.Prefix // the subnet Iface is on
}

// A Site is a host namespace on a subnet of its own behind a LAN host, the
// gateway: the machines behind a site-to-site tunnel endpoint. The gateway
// forwards IPv4, and the site's default route points at it.
type Site struct {
	*Host                  // the site namespace, at .2 on its subnet
	Gateway     *Host      // the LAN host the site hangs off
	GatewayAddr netip.Addr // the gateway's address on the site subnet: .1
}

// NewLAN creates a LAN of n hosts, skipping t if it cannot (see RequireRoot).
// t's cleanup deletes every namespace and link it made.
func NewLAN(t testing.TB, n int) *LAN {
	t.Helper()
	RequireRoot(t)
	if n < 1 || n > 254 {
		t.Fatalf("nstest: NewLAN(%d): want 1 to 254 hosts", n)
	}
	sweep()
	l := &LAN{t: t, Prefix: newPrefix()}
	l.bridge = l.addNetns("lan")
	l.ip(l.bridge, "link", "add", "br0", "type", "bridge")
	l.ip(l.bridge, "link", "set", "br0", "up")

	addr := lanSubnet.Addr()
	for i := 1; i <= n; i++ {
		addr = addr.Next()
		port := fmt.Sprintf("h%d", i)
		h := &Host{Name: l.addNetns(port), Iface: "eth0", Addr: addr, Subnet: lanSubnet}
		l.veth(h.Name, h.Iface, l.bridge, port)
		l.ip(l.bridge, "link", "set", port, "master", "br0", "up")
		l.addr(h)
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

// AddSite creates a site behind gw, one of l's hosts, on the next free site
// subnet (10.231.k.0/24 for the k-th site). Nothing routes the site subnet
// across the LAN: that is the tunnel's job.
func (l *LAN) AddSite(gw *Host) *Site {
	l.t.Helper()
	l.sites++
	if l.sites > 255 {
		l.t.Fatal("nstest: AddSite: out of site subnets")
	}
	b := siteBase.As4()
	b[2] = byte(l.sites)
	subnet := netip.PrefixFrom(netip.AddrFrom4(b), 24)
	s := &Site{
		Host: &Host{
			Name:   l.addNetns(fmt.Sprintf("s%d", l.sites)),
			Iface:  "eth0",
			Addr:   subnet.Addr().Next().Next(),
			Subnet: subnet,
		},
		Gateway:     gw,
		GatewayAddr: subnet.Addr().Next(),
	}
	gwIface := fmt.Sprintf("site%d", l.sites)
	l.veth(s.Name, s.Iface, gw.Name, gwIface)
	l.ip(gw.Name, "addr", "add", netip.PrefixFrom(s.GatewayAddr, 24).String(), "dev", gwIface)
	l.ip(gw.Name, "link", "set", gwIface, "up")
	l.addr(s.Host)
	l.ip(s.Name, "route", "add", "default", "via", s.GatewayAddr.String())
	err := gw.InNetns(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0)
	})
	if err != nil {
		l.t.Fatalf("nstest: enable forwarding in %s: %v", gw.Name, err)
	}
	return s
}

// AddNetns creates an empty namespace, its loopback up, for the test to
// wire up: a container for a CNI plugin, say. role names it within the LAN.
func (l *LAN) AddNetns(role string) *Host {
	l.t.Helper()
	return &Host{Name: l.addNetns(role)}
}

// addNetns creates the namespace Prefix+role, deleted in t's cleanup.
func (l *LAN) addNetns(role string) string {
	l.t.Helper()
	name := l.Prefix + role
	l.run("ip", "netns", "add", name)
	track(l.t, func() { deleteNetns(name) })
	l.ip(name, "link", "set", "lo", "up")
	return name
}

// deleteNetns deletes the namespace name, and with it every link in it. A
// process still inside, which the test started but did not stop (a child of a
// Proc, say), would keep the namespace alive unnamed, so it is killed first.
func deleteNetns(name string) {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	exec.Command("ip", "netns", "delete", name).Run()
}

// veth creates a veth pair with one end in each namespace. It never exists in
// the host namespace, so its names need not be unique.
func (l *LAN) veth(ns1, if1, ns2, if2 string) {
	l.t.Helper()
	l.run("ip", "link", "add", if1, "netns", ns1, "type", "veth", "peer", "name", if2, "netns", ns2)
}

// addr assigns h its address and brings its interface up.
func (l *LAN) addr(h *Host) {
	l.t.Helper()
	l.ip(h.Name, "addr", "add", netip.PrefixFrom(h.Addr, h.Subnet.Bits()).String(), "dev", h.Iface)
	l.ip(h.Name, "link", "set", h.Iface, "up")
}

// ip runs ip -n ns args, failing the test if it fails.
func (l *LAN) ip(ns string, args ...string) {
	l.t.Helper()
	l.run("ip", append([]string{"-n", ns}, args...)...)
}

func (l *LAN) run(name string, args ...string) {
	l.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		l.t.Fatalf("nstest: %s %s: %v: %s", name, strings.Join(args, " "), err, trimOut(out))
	}
}

// Exec runs the command name with args inside h's namespace and returns its
// combined output. The error, if any, includes the output.
func (h *Host) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), h.Name, err, trimOut(out))
	}
	return out, nil
}

// MustExec is Exec that fails t on error, for setup steps.
func (h *Host) MustExec(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := h.Exec(t.Context(), name, args...)
	if err != nil {
		t.Fatalf("nstest: %v", err)
	}
	return out
}

// String returns h's namespace name.
func (h *Host) String() string { return h.Name }

// trimOut trims command output for an error message.
func trimOut(out []byte) string { return strings.TrimSpace(string(out)) }

// NewLink creates two host namespaces joined by a single veth pair, eth0 at
// each end, with no bridge between them: the shortest path two hosts can
// have, for benchmarks. a and b are their addresses with the subnet length.
// It skips t like NewLAN, and t's cleanup (or the watchdog) deletes both.
func NewLink(t testing.TB, a, b netip.Prefix) (*Host, *Host) {
	t.Helper()
	RequireRoot(t)
	sweep()
	l := &LAN{t: t, Prefix: newPrefix()}
	hosts := make([]*Host, 2)
	for i, p := range []netip.Prefix{a, b} {
		hosts[i] = &Host{Name: l.addNetns(fmt.Sprintf("h%d", i+1)), Iface: "eth0", Addr: p.Addr(), Subnet: p.Masked()}
	}
	l.veth(hosts[0].Name, "eth0", hosts[1].Name, "eth0")
	for _, h := range hosts {
		l.addr(h)
	}
	return hosts[0], hosts[1]
}

// SetMTU sets the MTU of every link of the LAN, the hosts' interfaces and
// the bridge's ports alike: an underlay that carries less than the usual
// 1500 bytes, as a tunnel or a cloud network does.
func (l *LAN) SetMTU(mtu int) {
	l.t.Helper()
	for i, h := range l.Hosts {
		l.ip(h.Name, "link", "set", h.Iface, "mtu", strconv.Itoa(mtu))
		l.ip(l.bridge, "link", "set", fmt.Sprintf("h%d", i+1), "mtu", strconv.Itoa(mtu))
	}
}

// networks counts AttachNetwork's namespaces in this test binary, for
// their transit subnets and interface names.
var networks atomic.Int64

// AttachNetwork creates a namespace that owns every address of sources,
// joined to gw by a veth pair of its own and routed from gw: a network
// behind a router, as the internet is seen from gw. A socket in it may bind
// any address of sources (the whole prefix is local there), and gw's
// replies to those addresses come back to it. The transit link is
// 10.232.N.0/30, gw at .1 and the new namespace at .2, whose default route
// is gw; traffic from it to gw is best aimed at GatewayAddr, the source of
// gw's replies. It skips t like NewLAN, and t's cleanup deletes it.
func AttachNetwork(t testing.TB, gw *Host, sources netip.Prefix) *Site {
	t.Helper()
	RequireRoot(t)
	n := networks.Add(1)
	if n > 255 {
		t.Fatal("nstest: AttachNetwork: out of transit subnets")
	}
	l := &LAN{t: t, Prefix: newPrefix()}
	gwAddr := netip.AddrFrom4([4]byte{10, 232, byte(n), 1})
	h := &Host{Name: l.addNetns("net"), Iface: "eth0", Addr: gwAddr.Next(), Subnet: netip.PrefixFrom(gwAddr, 30).Masked()}
	gwIface := fmt.Sprintf("net%d", n)
	l.veth(h.Name, h.Iface, gw.Name, gwIface)
	l.addr(h)
	l.ip(gw.Name, "addr", "add", netip.PrefixFrom(gwAddr, 30).String(), "dev", gwIface)
	l.ip(gw.Name, "link", "set", gwIface, "up")
	l.ip(gw.Name, "route", "add", sources.Masked().String(), "via", h.Addr.String())
	l.ip(h.Name, "route", "add", "default", "via", gwAddr.String())
	l.ip(h.Name, "route", "add", "local", sources.Masked().String(), "dev", "lo")
	return &Site{Host: h, Gateway: gw, GatewayAddr: gwAddr}
}
