package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/policy"
)

const policySynopsis = "policy why -c MESH FROM TO PORT/PROTO"

// cmdPolicy runs the policy subcommands; why is the only one.
func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "why" {
		what := "missing subcommand"
		if len(args) > 0 {
			what = fmt.Sprintf("unknown subcommand %q", args[0])
		}
		return &usageError{msg: fmt.Sprintf("policy: %s\nusage: overlay-node %s", what, policySynopsis)}
	}
	return cmdPolicyWhy(args[1:], stdout, stderr)
}

// cmdPolicyWhy prints whether the mesh's rules allow a new flow, and the
// rule that decided or why none allowed it.
func cmdPolicyWhy(args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy why", policySynopsis+"\n\nFROM and TO are node names or addresses; PORT/PROTO is e.g. 5432/tcp, 53/udp or icmp.", stdout)
	meshPath := c.String("c", "", "mesh file (required)")
	if err := c.Parse(args); err != nil {
		return c.parse(args) // the same error, as a usage line, or help
	}
	usage := func(format string, a ...any) error {
		return &usageError{msg: fmt.Sprintf("policy why: "+format+"\nusage: overlay-node %s", append(a, policySynopsis)...)}
	}
	if *meshPath == "" {
		return usage("-c is required")
	}
	if c.NArg() != 3 {
		return usage("want FROM TO PORT/PROTO, got %d argument(s)", c.NArg())
	}
	port, err := policy.ParsePorts(c.Arg(2))
	if err != nil || port.Any || port.Lo != port.Hi {
		return usage("%q is not one port and protocol: write e.g. 5432/tcp, 53/udp or icmp", c.Arg(2))
	}
	mesh, err := loadMesh(*meshPath, stderr)
	if err != nil {
		return err
	}
	from, err := flowEnd(mesh, c.Arg(0))
	if err != nil {
		return usage("%v", err)
	}
	to, err := flowEnd(mesh, c.Arg(1))
	if err != nil {
		return usage("%v", err)
	}

	p := mesh.Policy()
	decided := false
	for _, s := range from.addrs {
		for _, d := range to.addrs {
			if s.Is4() != d.Is4() {
				continue
			}
			proto := port.Proto
			if proto == policy.ProtoICMP && s.Is6() {
				proto = policy.ProtoICMPv6
			}
			v := p.Decide(s, d, proto, port.Lo)
			word := "deny"
			if v.Allow {
				word = "allow"
			}
			fmt.Fprintf(stdout, "%s  %s\n", word, p.Explain(v, from.describe(s), to.describe(d), proto, port.Lo))
			decided = true
		}
	}
	if !decided {
		return errors.New("policy why: " + c.Arg(0) + " and " + c.Arg(1) + " have no addresses of the same family")
	}
	return nil
}

// end is one end of a flow: a node's addresses, or an address.
type end struct {
	node  string // "" for an address
	addrs []netip.Addr
}

func (e end) describe(a netip.Addr) string {
	if e.node == "" {
		return a.String()
	}
	return fmt.Sprintf("node %s (%s)", e.node, a)
}

// flowEnd resolves a node name ("web1" or "node:web1") or an address.
func flowEnd(mesh *config.Mesh, s string) (end, error) {
	name := strings.TrimPrefix(s, "node:")
	for _, n := range mesh.Nodes {
		if n.Name == name {
			e := end{node: n.Name}
			for _, a := range n.Addresses {
				e.addrs = append(e.addrs, a.Addr())
			}
			return e, nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return end{addrs: []netip.Addr{a.Unmap()}}, nil
	}
	return end{}, fmt.Errorf("%q is neither a node of %s nor an address", s, mesh.Path)
}
