// Package policy owns the mesh's segmentation rules in compiled form: it
// decides whether a new flow is allowed, and which rule allowed it or why
// none did.
//
// The caller (config) resolves the mesh file's selectors to prefixes and
// hands Compile plain rules. Compile builds, for the sources, the
// destinations and each protocol's ports, a sorted table of intervals that
// each map to the set of rules covering them, as a bitset in file order. A
// decision is three binary searches and an AND of three bitsets; the
// lowest bit left is the deciding rule. Nothing allocates per query.
//
// A nil *Policy is "no policy": a mesh file without [[allow]] rules, where
// every flow between members passes.
package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
)

// Rule is one allow rule as Compile takes it: plain values, with the
// selectors of the mesh file already resolved to prefixes.
type Rule struct {
	Name  string         // unique name, e.g. "web-to-db" or "allow-3"
	Pos   string         // where it is written, e.g. "mesh.toml:12"
	From  []netip.Prefix // sources it admits
	To    []netip.Prefix // destinations it admits
	Ports []Ports        // what it admits to them; empty means AnyPorts
}

// Reason says why a flow was denied, as far as the rules tell.
type Reason uint8

// The reasons of a Verdict.
const (
	Allowed       Reason = iota // a rule allowed the flow
	NoPolicy                    // allowed: the mesh has no rules
	NoSource                    // no rule admits the source
	NoDestination               // rules admit the source, none of them the destination
	NoPort                      // rules admit source and destination, none the protocol or port
)

// Verdict is the decision about one new flow.
type Verdict struct {
	Allow  bool
	Rule   int // index of the deciding rule in file order; -1 when none decided
	Reason Reason
}

// Policy is a compiled, immutable rule set, safe for concurrent use.
// The nil *Policy allows everything.
type Policy struct {
	rules []Rule
	words int // uint64 words in every bitset: one bit per rule

	from, to   addrTable
	tcp, udp   portTable
	icmp       []uint64 // rules admitting ICMP (and ICMPv6)
	otherProto []uint64 // rules admitting every protocol
	hash       string
}

// Compile builds a Policy from rules, in file order: the first rule that
// allows a flow is the one that decides it. It returns nil, the policy that
// allows everything, when there are no rules. Invalid prefixes are ignored.
func Compile(rules []Rule) *Policy {
	if len(rules) == 0 {
		return nil
	}
	p := &Policy{rules: cloneRules(rules), words: (len(rules) + 63) / 64}
	p.from = buildAddrTable(p.words, p.rules, func(r *Rule) []netip.Prefix { return r.From })
	p.to = buildAddrTable(p.words, p.rules, func(r *Rule) []netip.Prefix { return r.To })
	p.tcp = buildPortTable(p.words, p.rules, ProtoTCP)
	p.udp = buildPortTable(p.words, p.rules, ProtoUDP)
	p.icmp = make([]uint64, p.words)
	p.otherProto = make([]uint64, p.words)
	for i := range p.rules {
		for _, pt := range portsOf(&p.rules[i]) {
			if pt.Any || pt.Proto == ProtoICMP {
				setBit(p.icmp, i)
			}
			if pt.Any {
				setBit(p.otherProto, i)
			}
		}
	}
	p.hash = hashRules(p.rules)
	return p
}

func cloneRules(rules []Rule) []Rule {
	out := make([]Rule, len(rules))
	for i, r := range rules {
		r.From = slices.Clone(r.From)
		r.To = slices.Clone(r.To)
		r.Ports = slices.Clone(r.Ports)
		out[i] = r
	}
	return out
}

// portsOf returns the ports of r, AnyPorts when it lists none.
func portsOf(r *Rule) []Ports {
	if len(r.Ports) == 0 {
		return []Ports{AnyPorts}
	}
	return r.Ports
}

func setBit(set []uint64, i int) { set[i/64] |= 1 << (i % 64) }

// Decide decides a new flow from src to dst: proto is the IP protocol
// number, port the destination port (ignored unless proto is TCP or UDP).
// IPv4-mapped IPv6 addresses count as IPv4.
func (p *Policy) Decide(src, dst netip.Addr, proto uint8, port uint16) Verdict {
	if p == nil {
		return Verdict{Allow: true, Rule: -1, Reason: NoPolicy}
	}
	from := p.from.lookup(src)
	to := p.to.lookup(dst)
	var ports []uint64
	switch proto {
	case ProtoTCP:
		ports = p.tcp.lookup(port)
	case ProtoUDP:
		ports = p.udp.lookup(port)
	case ProtoICMP, ProtoICMPv6:
		ports = p.icmp
	default:
		ports = p.otherProto
	}
	var anyFrom, anyFromTo uint64
	for w := range p.words {
		ft := from[w] & to[w]
		if m := ft & ports[w]; m != 0 {
			return Verdict{Allow: true, Rule: w*64 + bits.TrailingZeros64(m), Reason: Allowed}
		}
		anyFrom |= from[w]
		anyFromTo |= ft
	}
	reason := NoPort
	switch {
	case anyFrom == 0:
		reason = NoSource
	case anyFromTo == 0:
		reason = NoDestination
	}
	return Verdict{Rule: -1, Reason: reason}
}

// Rules returns the number of rules.
func (p *Policy) Rules() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// Rule returns rule i, in file order. The caller must not change its slices.
func (p *Policy) Rule(i int) Rule { return p.rules[i] }

// Hash returns a hex SHA-256 digest of the normalized rules: their names,
// order, sorted and deduplicated prefixes, and ports, but not where they
// are written. Nodes that loaded the same rules report the same hash. It is
// "" for the nil policy.
func (p *Policy) Hash() string {
	if p == nil {
		return ""
	}
	return p.hash
}

func hashRules(rules []Rule) string {
	h := sha256.New()
	prefixes := func(ps []netip.Prefix) string {
		var s []string
		for _, p := range ps {
			if p.IsValid() {
				s = append(s, p.Masked().String())
			}
		}
		slices.Sort(s)
		return strings.Join(slices.Compact(s), ",")
	}
	for i := range rules {
		r := &rules[i]
		var ports []string
		for _, pt := range portsOf(r) {
			ports = append(ports, pt.String())
		}
		slices.Sort(ports)
		fmt.Fprintf(h, "%q from %s to %s ports %s\n", r.Name, prefixes(r.From), prefixes(r.To), strings.Join(slices.Compact(ports), ","))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Explain says in words what decided v, a verdict of p about a flow from
// src to dst ("node web1", "10.0.0.9"), with proto and port as given to
// Decide: the rule and where it is written, or why nothing allowed it.
func (p *Policy) Explain(v Verdict, src, dst string, proto uint8, port uint16) string {
	what := ProtoName(proto)
	if proto == ProtoTCP || proto == ProtoUDP {
		what = fmt.Sprintf("%d/%s", port, what)
	}
	switch {
	case v.Reason == NoPolicy:
		return "no [[allow]] rules: every flow between mesh members passes"
	case v.Allow:
		r := &p.rules[v.Rule]
		return fmt.Sprintf("rule %q (%s) allows %s from %s to %s", r.Name, r.Pos, what, src, dst)
	case v.Reason == NoSource:
		return fmt.Sprintf("no rule allows %s from %s to %s: no rule allows anything from %s", what, src, dst, src)
	case v.Reason == NoDestination:
		return fmt.Sprintf("no rule allows %s from %s to %s: rules allow traffic from %s, but none to %s", what, src, dst, src, dst)
	}
	return fmt.Sprintf("no rule allows %s from %s to %s: rules allow traffic from %s to %s, but not %s", what, src, dst, src, dst, what)
}
