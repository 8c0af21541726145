package dnsserver

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// DefaultUpstreams returns the nameservers of a resolv.conf file (usually
// /etc/resolv.conf) on port 53, in order, leaving out own: the addresses
// this node's DNS server answers on, which would forward to themselves.
func DefaultUpstreams(path string, own []netip.Addr) ([]netip.AddrPort, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dnsserver: default upstreams: %w", err)
	}
	defer f.Close()
	var out []netip.AddrPort
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil || a.IsUnspecified() {
			continue // as glibc does: an unusable line is skipped
		}
		a = a.Unmap()
		if slices.Contains(own, a.WithZone("")) {
			continue
		}
		ap := netip.AddrPortFrom(a, 53)
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dnsserver: read %s: %w", path, err)
	}
	return out, nil
}
