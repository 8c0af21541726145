package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
)

// checkInterface: the link exists, is up, has the node's MTU and every one
// of its addresses.
func checkInterface(r *Report, st *control.Status) {
	const name = "interface"
	link, err := netlink.LinkByName(st.Interface)
	if err != nil {
		r.add(name, Fail, fmt.Sprintf("no interface %s in this network namespace: %v", st.Interface, err),
			"restart the node; run doctor in the node's network namespace")
		return
	}
	a := link.Attrs()
	var problems, fixes []string
	if a.Flags&net.FlagUp == 0 {
		problems = append(problems, "it is down")
		fixes = append(fixes, "ip link set "+st.Interface+" up")
	}
	if a.MTU != st.MTU {
		problems = append(problems, fmt.Sprintf("its MTU is %d, the mesh's is %d", a.MTU, st.MTU))
		fixes = append(fixes, fmt.Sprintf("ip link set %s mtu %d (or restart the node)", st.Interface, st.MTU))
	}
	have := map[netip.Prefix]bool{}
	if addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL); err == nil {
		for _, ad := range addrs {
			if p, ok := prefixOf(ad.IPNet); ok {
				have[p] = true
			}
		}
	}
	for _, p := range st.Addresses {
		if !have[p] {
			problems = append(problems, "address "+p.String()+" is missing")
			fixes = append(fixes, fmt.Sprintf("ip addr add %s dev %s (or restart the node)", p, st.Interface))
		}
	}
	saw := fmt.Sprintf("%s up, mtu %d, %s", st.Interface, a.MTU, prefixList(st.Addresses))
	if len(problems) > 0 {
		r.add(name, Fail, fmt.Sprintf("%s: %s", st.Interface, strings.Join(problems, "; ")), strings.Join(fixes, "; "))
		return
	}
	r.ok(name, saw)
}

// checkRoutes: every prefix the node routes has its route through the
// interface, and no more specific route elsewhere takes part of it.
func checkRoutes(r *Report, st *control.Status) {
	link, err := netlink.LinkByName(st.Interface)
	if err != nil {
		r.add("routes", Fail, "cannot read routes: no interface "+st.Interface, "see the interface check")
		return
	}
	idx := link.Attrs().Index
	all, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		r.add("routes", Fail, "cannot list routes: "+err.Error(), "run as root in the node's network namespace")
		return
	}
	var missing, present []netip.Prefix
	for _, want := range st.Routes {
		found := slices.ContainsFunc(all, func(rt netlink.Route) bool {
			p, ok := prefixOf(rt.Dst)
			return ok && p == want && rt.LinkIndex == idx
		})
		if found {
			present = append(present, want)
		} else {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		var fixes []string
		for _, p := range missing {
			fixes = append(fixes, fmt.Sprintf("ip route add %s dev %s", p, st.Interface))
		}
		r.add("routes", Fail, fmt.Sprintf("no route through %s for %s", st.Interface, prefixList(missing)),
			strings.Join(fixes, "; ")+" (or restart the node, which adds them)")
	} else {
		r.ok("routes", fmt.Sprintf("%d prefix(es) routed through %s: %s", len(present), st.Interface, prefixList(present)))
	}

	// Shadowing: a route elsewhere, more specific or preferred, inside a
	// prefix that is routed here. A container bridge on an overlapping
	// range is the classic.
	var shadows, fixes []string
	for _, want := range present {
		for _, rt := range all {
			p, ok := prefixOf(rt.Dst)
			if !ok || rt.LinkIndex == idx || !want.Overlaps(p) || p.Bits() < want.Bits() {
				continue
			}
			if p.Bits() == want.Bits() && !preferred(rt, all, want, idx) {
				continue
			}
			shadows = append(shadows, fmt.Sprintf("%s via %s takes %s of %s", p, linkName(rt.LinkIndex), part(p, want), want))
			fixes = append(fixes, fmt.Sprintf("move %s off %s's range (or drop that route: ip route del %s dev %s)",
				linkName(rt.LinkIndex), want, p, linkName(rt.LinkIndex)))
		}
	}
	// Policy routing can send a peer's addresses elsewhere even when the
	// main table is right: ask the kernel where they go.
	for _, pr := range st.Peers {
		for _, a := range pr.AllowedIPs {
			if !slices.ContainsFunc(present, func(p netip.Prefix) bool { return p.Overlaps(a) }) {
				continue
			}
			probe := probeAddr(a)
			got, err := netlink.RouteGet(probe.AsSlice())
			if err != nil || len(got) == 0 || got[0].LinkIndex == idx {
				continue
			}
			if slices.ContainsFunc(shadows, func(s string) bool { return strings.Contains(s, " of "+a.String()) }) {
				continue
			}
			shadows = append(shadows, fmt.Sprintf("packets to %s (peer %s) leave through %s", probe, pr.Name, linkName(got[0].LinkIndex)))
			fixes = append(fixes, "check `ip rule` and `ip route get "+probe.String()+"`")
		}
	}
	if len(shadows) > 0 {
		r.add("route shadowing", Fail, strings.Join(shadows, "; "), strings.Join(fixes, "; "))
		return
	}
	r.ok("route shadowing", "no route elsewhere takes part of a routed prefix")
}

// preferred reports whether rt, a route to exactly want on another link,
// wins over the route through the interface: a lower metric.
func preferred(rt netlink.Route, all []netlink.Route, want netip.Prefix, idx int) bool {
	for _, o := range all {
		if p, ok := prefixOf(o.Dst); ok && p == want && o.LinkIndex == idx {
			return rt.Priority < o.Priority
		}
	}
	return false
}

func part(p, of netip.Prefix) string {
	if p.Bits() == of.Bits() {
		return "all"
	}
	return "part"
}

// probeAddr is an address inside p to ask the kernel about: its first
// host address.
func probeAddr(p netip.Prefix) netip.Addr {
	if p.IsSingleIP() {
		return p.Addr()
	}
	return p.Masked().Addr().Next()
}

func linkName(idx int) string {
	if l, err := netlink.LinkByIndex(idx); err == nil {
		return l.Attrs().Name
	}
	return "link " + strconv.Itoa(idx)
}

// checkForwarding: a node that routes subnets needs the kernel to forward
// between them and the interface.
func checkForwarding(r *Report, st *control.Status) {
	const name = "forwarding"
	if len(st.Subnets) == 0 {
		r.ok(name, "not needed: this node routes no subnets or containers")
		return
	}
	var off []string
	var v4, v6 bool
	for _, p := range st.Subnets {
		v4, v6 = v4 || p.Addr().Is4(), v6 || p.Addr().Is6()
	}
	if v4 && sysctl("net/ipv4/ip_forward") != "1" {
		off = append(off, "net.ipv4.ip_forward")
	}
	if v6 && sysctl("net/ipv6/conf/all/forwarding") != "1" {
		off = append(off, "net.ipv6.conf.all.forwarding")
	}
	if len(off) > 0 {
		var fixes []string
		for _, k := range off {
			fixes = append(fixes, "sysctl -w "+k+"=1")
		}
		r.add(name, Fail, fmt.Sprintf("%s is off, and this node routes %s", strings.Join(off, " and "), prefixList(st.Subnets)),
			strings.Join(fixes, "; ")+" (and set it in /etc/sysctl.d to keep it)")
		return
	}
	r.ok(name, "on, for "+prefixList(st.Subnets))
}

func sysctl(key string) string {
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// checkPort: something in this namespace has the node's UDP port bound.
func checkPort(r *Report, st *control.Status) {
	const name = "udp port"
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		if udpBound(f, st.ListenPort) {
			r.ok(name, fmt.Sprintf("%d is bound", st.ListenPort))
			return
		}
	}
	r.add(name, Fail, fmt.Sprintf("nothing has UDP port %d bound in this network namespace", st.ListenPort),
		"restart the node; run doctor in the node's network namespace")
}

// udpBound reports whether /proc/net/udp-style file lists a socket bound
// to port.
func udpBound(file string, port uint16) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 1 && strings.HasSuffix(fields[1], want) {
			return true
		}
	}
	return false
}

// readFirewalls reads the host's firewall: nftables (which also holds the
// rules of iptables-nft), and legacy iptables when its tools are there.
func readFirewalls(ctx context.Context) (sets []*ruleset, read []string, err error) {
	run := func(name string, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, name, args...).Output()
	}
	if _, lerr := exec.LookPath("nft"); lerr == nil {
		js, err := run("nft", "-j", "list", "ruleset")
		if err != nil {
			return nil, nil, fmt.Errorf("nft -j list ruleset: %w", exitErr(err))
		}
		text, _ := run("nft", "-a", "list", "ruleset")
		rs, err := parseNft(js, text)
		if err != nil {
			return nil, nil, err
		}
		sets, read = append(sets, rs), append(read, "nftables")
	}
	for _, tool := range []struct{ cmd, family string }{{"iptables-legacy-save", "ip"}, {"ip6tables-legacy-save", "ip6"}} {
		if _, lerr := exec.LookPath(tool.cmd); lerr != nil {
			continue
		}
		out, err := run(tool.cmd)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", tool.cmd, exitErr(err))
		}
		sets, read = append(sets, parseIptablesSave(out, tool.family)), append(read, tool.cmd)
	}
	// An iptables without -legacy- is either iptables-nft (listed by nft
	// above) or legacy on a host without nft.
	if len(read) == 0 {
		if _, lerr := exec.LookPath("iptables-save"); lerr == nil {
			out, err := run("iptables-save")
			if err != nil {
				return nil, nil, fmt.Errorf("iptables-save: %w", exitErr(err))
			}
			sets, read = append(sets, parseIptablesSave(out, "ip")), append(read, "iptables-save")
		}
	}
	return sets, read, nil
}

func exitErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}

// checkFirewall: the host firewall lets in the mesh port, and overlay
// traffic to this host and, where the node routes subnets, through it.
func checkFirewall(ctx context.Context, r *Report, st *control.Status) {
	const name = "firewall"
	sets, read, err := readFirewalls(ctx)
	switch {
	case err != nil:
		r.add(name, Warn, "cannot read the firewall: "+err.Error(), "run doctor as root")
		return
	case len(read) == 0:
		r.ok(name, "no nft or iptables-save here: no host firewall to read")
		return
	}
	type probe struct {
		hook string
		pkt  packet
		what string
		warn bool // a drop that may apply is worth a warning
	}
	probes := []probe{
		{"input", packet{proto: "udp", dport: st.ListenPort, fromNetwork: true}, fmt.Sprintf("UDP to the mesh port %d", st.ListenPort), true},
		{"input", packet{iif: st.Interface}, "overlay traffic to this host (in " + st.Interface + ")", false},
	}
	if len(st.Subnets) > 0 {
		probes = append(probes,
			probe{"forward", packet{iif: st.Interface}, "overlay traffic forwarded from " + st.Interface, false},
			probe{"forward", packet{oif: st.Interface}, "traffic forwarded into " + st.Interface, false})
	}
	var fails, warns []string
	for _, rs := range sets {
		for _, p := range probes {
			res := rs.eval(p.hook, p.pkt)
			switch {
			case res.drop == yes:
				fails = append(fails, fmt.Sprintf("%s is dropped by %s", p.what, res.by))
			case res.drop == maybe && p.warn:
				warns = append(warns, fmt.Sprintf("%s may be dropped by %s", p.what, res.by))
			}
		}
	}
	fix := fmt.Sprintf("accept them before that rule, e.g. nft insert rule inet filter input udp dport %d accept; "+
		"nft insert rule inet filter forward iifname %q accept; nft insert rule inet filter forward oifname %q accept",
		st.ListenPort, st.Interface, st.Interface)
	switch {
	case len(fails) > 0:
		r.add(name, Fail, strings.Join(fails, "; "), fix)
	case len(warns) > 0:
		r.add(name, Warn, strings.Join(warns, "; "), "check that rule lets peers in: "+fix)
	default:
		r.ok(name, fmt.Sprintf("%s let the mesh port and overlay traffic through", strings.Join(read, " and ")))
	}
}

// kernelChecks runs the checks of what the kernel holds, bottom up.
func kernelChecks(ctx context.Context, r *Report, st *control.Status) {
	checkInterface(r, st)
	checkRoutes(r, st)
	checkForwarding(r, st)
	checkFirewall(ctx, r, st)
	checkPort(r, st)
}

// underlayMTU returns the link the kernel sends to ep through and the MTU
// on the way: the route's own MTU if it sets one, else the link's.
func underlayMTU(ep netip.Addr) (link string, mtu int, err error) {
	rts, err := netlink.RouteGet(ep.AsSlice())
	if err != nil || len(rts) == 0 {
		return "", 0, fmt.Errorf("no route to %s: %v", ep, err)
	}
	l, err := netlink.LinkByIndex(rts[0].LinkIndex)
	if err != nil {
		return "", 0, err
	}
	mtu = l.Attrs().MTU
	if rts[0].MTU > 0 && rts[0].MTU < mtu {
		mtu = rts[0].MTU
	}
	return l.Attrs().Name, mtu, nil
}
