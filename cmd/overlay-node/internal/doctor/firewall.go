package doctor

import (
	"fmt"
	"strings"
)

// The host firewall is read as a list of chains of rules, whatever tool
// wrote it (nftables, or legacy iptables), and a packet of interest is run
// through it: a UDP datagram to the mesh port (INPUT), or an overlay packet
// forwarded to or from the interface (FORWARD). Rules are matched three
// ways: a match the model understands (protocol, port, interface name) says
// yes or no; anything else (addresses, conntrack state, marks) says maybe.
// A drop that surely applies is a failure; one that may apply, a warning.

// tri is a three-valued answer: a match that the model cannot decide is
// maybe.
type tri uint8

const (
	no tri = iota
	maybe
	yes
)

func (t tri) not() tri { return 2 - t }

func (t tri) and(u tri) tri { return min(t, u) }

// packet is what the model knows of the packet it runs through the rules.
// An empty field is unknown: a match on it says maybe.
type packet struct {
	proto string // "udp"; "" for forwarded traffic of any protocol
	dport uint16 // with proto
	iif   string // input interface name
	oif   string // output interface name
	// fromNetwork says the packet came in from another host, so not on
	// the loopback interface, whatever its iif.
	fromNetwork bool
}

func (p packet) String() string {
	var parts []string
	if p.proto != "" {
		parts = append(parts, fmt.Sprintf("%s dport %d", p.proto, p.dport))
	}
	if p.iif != "" {
		parts = append(parts, "in "+p.iif)
	}
	if p.oif != "" {
		parts = append(parts, "out "+p.oif)
	}
	return strings.Join(parts, ", ")
}

// fwMatch is one condition of a rule.
type fwMatch func(packet) tri

// fwVerdict is what a rule does when it matches.
type fwVerdict struct {
	kind   string // "accept", "drop" (reject too), "jump", "goto", "return"; "" continues
	target string // chain of a jump or goto
}

// fwRule is one rule: all its matches must hold for its verdict.
type fwRule struct {
	matches []fwMatch
	verdict fwVerdict
	text    string // how the tool prints it, for the report
}

// fwChain is a chain of rules. A base chain hangs off a hook and has a
// policy; a regular chain is only jumped to.
type fwChain struct {
	name   string // table and chain, e.g. "inet filter input"
	hook   string // "input", "forward", ...; "" for a regular chain
	policy string // "accept" or "drop", for a base chain
	rules  []fwRule
}

// ruleset is a whole firewall: its chains by name.
type ruleset struct {
	tool   string // "nft" or "iptables"
	chains map[string]*fwChain
	order  []string // base chains in the order they were listed
}

// fwResult is how a packet fares in one base chain.
type fwResult struct {
	drop tri    // whether it is dropped
	by   string // the rule or policy that drops it
}

// eval runs pkt through every base chain on hook: the packet must pass
// each one. It returns the surest drop found.
func (rs *ruleset) eval(hook string, pkt packet) fwResult {
	var worst fwResult
	for _, name := range rs.order {
		c := rs.chains[name]
		if c.hook != hook {
			continue
		}
		r := rs.evalChain(c, pkt, 0)
		if r.kind == "" {
			// Fell off the end: the policy decides, as surely as the
			// packet got there.
			r.kind = "accept"
			if c.policy == "drop" {
				r.kind, r.by = "drop", c.name+": the chain's policy is drop"
			}
		}
		var res fwResult
		switch {
		case r.kind == "drop":
			res = fwResult{drop: r.sure, by: r.by}
		case r.maybeDrop != "":
			res = fwResult{drop: maybe, by: r.maybeDrop}
		}
		if res.drop > worst.drop {
			worst = res
		}
	}
	return worst
}

// chainResult is the outcome of one chain: a verdict (kind "" when the
// packet fell off its end), how sure it is, and a drop that might have
// applied on the way.
type chainResult struct {
	kind      string
	sure      tri
	by        string
	maybeDrop string
}

// maxJumpDepth bounds jumps, as the kernel does.
const maxJumpDepth = 16

func (rs *ruleset) evalChain(c *fwChain, pkt packet, depth int) chainResult {
	var res chainResult
	sure := yes // lowered by every accept on the way that may have applied
	for _, r := range c.rules {
		m := yes
		for _, f := range r.matches {
			m = m.and(f(pkt))
		}
		if m == no {
			continue
		}
		where := fmt.Sprintf("%s: %s", c.name, r.text)
		switch r.verdict.kind {
		case "accept":
			if m == yes {
				return chainResult{kind: "accept", sure: sure, maybeDrop: res.maybeDrop}
			}
			sure = maybe
		case "drop":
			if m == yes {
				return chainResult{kind: "drop", sure: sure, by: where, maybeDrop: res.maybeDrop}
			}
			if res.maybeDrop == "" {
				res.maybeDrop = where
			}
		case "return":
			if m == yes {
				res.sure = sure
				return res
			}
			sure = maybe
		case "jump", "goto":
			t := rs.chains[r.verdict.target]
			if t == nil || depth >= maxJumpDepth {
				continue
			}
			sub := rs.evalChain(t, pkt, depth+1)
			if res.maybeDrop == "" {
				res.maybeDrop = sub.maybeDrop
			}
			if sub.kind == "" {
				sure = sure.and(sub.sure)
				if r.verdict.kind == "goto" && m == yes {
					res.sure = sure
					return res
				}
				continue
			}
			if m == yes {
				return chainResult{kind: sub.kind, sure: sure.and(sub.sure), by: sub.by, maybeDrop: res.maybeDrop}
			}
			if sub.kind == "drop" {
				if res.maybeDrop == "" {
					res.maybeDrop = sub.by
				}
				continue
			}
			sure = maybe
		}
	}
	res.sure = sure
	return res
}

// matchEq compares a field the packet may not know: unknown is maybe.
func matchEq(field func(packet) string, want func(string) bool) fwMatch {
	return func(p packet) tri {
		v := field(p)
		switch {
		case v == "" && p.fromNetwork && want("lo"):
			return no
		case v == "":
			return maybe
		case want(v):
			return yes
		}
		return no
	}
}

// ifaceMatch matches an interface name against an nft or iptables pattern:
// a trailing * (nft) or + (iptables) is a prefix match.
func ifaceMatch(pattern string) func(string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return func(s string) bool { return strings.HasPrefix(s, p) }
	}
	if p, ok := strings.CutSuffix(pattern, "+"); ok {
		return func(s string) bool { return strings.HasPrefix(s, p) }
	}
	return func(s string) bool { return s == pattern }
}

func iifOf(p packet) string   { return p.iif }
func oifOf(p packet) string   { return p.oif }
func protoOf(p packet) string { return p.proto }

// portMatch matches the destination port of a packet of protocol proto
// against ports, a set of ranges; with neg, it matches the other ports. A
// packet of another protocol never matches either way.
func portMatch(proto string, ports [][2]uint16, neg bool) fwMatch {
	return func(p packet) tri {
		switch {
		case p.proto == "":
			return maybe
		case p.proto != proto:
			return no
		}
		in := false
		for _, r := range ports {
			in = in || p.dport >= r[0] && p.dport <= r[1]
		}
		if in != neg {
			return yes
		}
		return no
	}
}

func negate(m fwMatch) fwMatch { return func(p packet) tri { return m(p).not() } }

func unknownMatch(packet) tri { return maybe }
