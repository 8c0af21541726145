package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

const endpointHint = `write host:port, e.g. "203.0.113.10:51820", "[2001:db8::10]:51820" or "gw.example.net:51820"`

// endpointProblem checks the syntax of an endpoint: an IP address or a host
// name, and a port. It returns the endpoint in a normal form, to find
// duplicates, or a problem.
func endpointProblem(s string) (norm, msg, hint string) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		switch a := ap.Addr(); {
		case ap.Port() == 0:
			return "", fmt.Sprintf("%q has port 0", s), "use the node's UDP listen port (1..65535), e.g. 51820"
		case a.IsUnspecified(), a.IsMulticast():
			return "", fmt.Sprintf("%s is not a unicast address", a), endpointHint
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String(), "", ""
	}
	if s == "" {
		return "", "is empty", "remove the key for a node that peers cannot reach (behind NAT), or " + endpointHint
	}
	if a, err := netip.ParseAddr(s); err == nil {
		withPort := netip.AddrPortFrom(a, 51820).String()
		return "", fmt.Sprintf("%q has no port", s), fmt.Sprintf(`add the node's UDP port, e.g. "%s"`, withPort)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && ae.Err == "missing port in address" && validHostname(s) {
			return "", fmt.Sprintf("%q has no port", s), fmt.Sprintf(`add the node's UDP port, e.g. "%s:51820"`, s)
		}
		if i := strings.LastIndexByte(s, ':'); i > 0 && ae != nil && ae.Err == "too many colons in address" {
			if a, err := netip.ParseAddr(s[:i]); err == nil {
				return "", fmt.Sprintf("%q is an IPv6 address and port without brackets", s),
					fmt.Sprintf(`put the address in brackets: "[%s]:%s"`, a, s[i+1:])
			}
			return "", fmt.Sprintf("%q is an IPv6 address without brackets, or has no port", s), `write "[2001:db8::10]:51820"`
		}
		return "", fmt.Sprintf("%q is not host:port", s), endpointHint
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Sprintf("%q has port %q, not a number from 1 to 65535", s, port), "use the node's UDP listen port, e.g. 51820"
	}
	if host == "" {
		return "", fmt.Sprintf("%q has no host", s), endpointHint
	}
	if _, err := netip.ParseAddr(host); err == nil || strings.Contains(host, ":") {
		// An address netip.ParseAddrPort rejected: brackets around IPv4, or
		// a malformed IPv6 address.
		return "", fmt.Sprintf("%q is not a valid address and port", s), endpointHint
	}
	if !validHostname(host) {
		return "", fmt.Sprintf("%q is not a valid IP address or host name", host), endpointHint
	}
	return strings.ToLower(strings.TrimSuffix(host, ".")) + ":" + strconv.FormatUint(p, 10), "", ""
}

// validHostname reports whether s is a DNS host name: dot-separated labels
// of letters, digits and '-', not all digits (that would be a bad IPv4
// address).
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	digitsOnly := true
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digitsOnly = false
			default:
				return false
			}
		}
	}
	return !digitsOnly
}

// ResolveEndpoint turns an endpoint ("host:port") into an address and port.
// An IP literal is used as is; a host name is looked up with
// net.DefaultResolver, and the first address it returns (the system's
// preferred one) is used. IPv4-mapped IPv6 addresses are unmapped.
func ResolveEndpoint(ctx context.Context, hostport string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(hostport); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("resolve endpoint %q: port 0", hostport)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve endpoint %q: %w", hostport, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve endpoint %q: port %q is not a number from 1 to 65535", hostport, port)
	}
	if !validHostname(host) {
		return netip.AddrPort{}, fmt.Errorf("resolve endpoint %q: %q is not a valid IP address or host name", hostport, host)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve endpoint %q: %w", hostport, err)
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve endpoint %q: no addresses for %s", hostport, host)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(p)), nil
}

// resolveIntervalProblem checks [mesh] resolve_interval, the text s that
// time.ParseDuration turned into d or err.
func resolveIntervalProblem(s string, d time.Duration, err error) (msg, hint string) {
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a duration", s), `write a number with a unit, e.g. "60s"`
	case d < MinResolveInterval:
		return fmt.Sprintf("%q is shorter than 1s", s), `host name endpoints are looked up again this often; the default is "60s"`
	}
	return "", ""
}
