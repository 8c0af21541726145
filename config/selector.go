package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// SelectorKind is what a Selector names.
type SelectorKind uint8

// The kinds of Selector.
const (
	SelectAll    SelectorKind = iota + 1 // "*": every address
	SelectGroup                          // "group:NAME": the nodes in a group
	SelectNode                           // "node:NAME": one node
	SelectPrefix                         // a CIDR, or an address as a host prefix
)

// Selector names the addresses an [[allow]] rule or an [[expect]] applies
// to. A node, and every node of a group, stands for its addresses and its
// subnets.
type Selector struct {
	Kind   SelectorKind
	Name   string       // SelectGroup and SelectNode
	Prefix netip.Prefix // SelectPrefix, in canonical (masked) form
}

// String formats s as the mesh file writes it.
func (s Selector) String() string {
	switch s.Kind {
	case SelectAll:
		return "*"
	case SelectGroup:
		return "group:" + s.Name
	case SelectNode:
		return "node:" + s.Name
	case SelectPrefix:
		if s.Prefix.IsSingleIP() {
			return s.Prefix.Addr().String()
		}
		return s.Prefix.String()
	}
	return ""
}

const selectorHint = `write "group:NAME", "node:NAME", a CIDR such as "10.100.0.0/24", or "*" for every address`

// parseSelector parses a selector: "*", "group:NAME", "node:NAME", a CIDR,
// or a single address. Whether a named node exists is checked by Validate.
func parseSelector(s string) (sel Selector, msg, hint string) {
	if s == "*" {
		return Selector{Kind: SelectAll}, "", ""
	}
	if kind, name, ok := strings.Cut(s, ":"); ok && (kind == "group" || kind == "node") {
		if name == "" {
			return sel, fmt.Sprintf("%q names no %s", s, kind), fmt.Sprintf(`write the %s's name after the colon, e.g. "%s:web"`, kind, kind)
		}
		if msg, hint := labelProblem(name); msg != "" {
			return sel, fmt.Sprintf("%q: %s", s, msg), hint
		}
		sel = Selector{Kind: SelectGroup, Name: name}
		if kind == "node" {
			sel.Kind = SelectNode
		}
		return sel, "", ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return sel, fmt.Sprintf("%q has a zone", s), "remove the %zone: overlay addresses have none"
		}
		a = a.Unmap()
		return Selector{Kind: SelectPrefix, Prefix: netip.PrefixFrom(a, a.BitLen())}, "", ""
	}
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil && strings.ContainsAny(s, "./:"):
		return sel, fmt.Sprintf("%q is not a CIDR: %s", s, netipReason(err)), `write a network address and prefix length, e.g. "10.100.0.0/24" or "fd00:100::/64"`
	case err != nil:
		return sel, fmt.Sprintf("%q is not a selector", s), fmt.Sprintf(`%s; for the group or node of that name write "group:%s" or "node:%s"`, selectorHint, s, s)
	case p.Addr().Is4In6():
		return sel, fmt.Sprintf("%s is an IPv4-mapped IPv6 network", p), fmt.Sprintf(`write the IPv4 form, e.g. "%s"`, netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
	case p != p.Masked():
		return sel, fmt.Sprintf("%s has host bits set", p), fmt.Sprintf(`write the network address "%s", or "%s" for this one host`, p.Masked(), p.Addr())
	}
	return Selector{Kind: SelectPrefix, Prefix: p}, "", ""
}
