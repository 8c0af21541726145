package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/policy"
)

const policySynopsis = "policy why [-c MESH | --interface NAME] FROM TO PORT/PROTO"

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
// rule that decided or why none allowed it: offline from a mesh file, or
// from the rules a running node has loaded.
func cmdPolicyWhy(args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy why", policySynopsis+"\n\nFROM and TO are node names or addresses; PORT/PROTO is e.g. 5432/tcp, 53/udp or icmp.\nWith -c the rules of a mesh file decide; with --interface, those of the node running on it.", stdout)
	meshPath := c.String("c", "", "mesh file")
	iface := c.String("interface", "", "interface of a running node")
	if err := c.Parse(args); err != nil {
		return c.parse(args) // the same error, as a usage line, or help
	}
	usage := func(format string, a ...any) error {
		return &usageError{msg: fmt.Sprintf("policy why: "+format+"\nusage: overlay-node %s", append(a, policySynopsis)...)}
	}
	if (*meshPath == "") == (*iface == "") {
		return usage("give one of -c and --interface")
	}
	if c.NArg() != 3 {
		return usage("want FROM TO PORT/PROTO, got %d argument(s)", c.NArg())
	}
	from, to, port := c.Arg(0), c.Arg(1), c.Arg(2)
	var lines []string
	if *iface != "" {
		ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
		defer cancel()
		var err error
		lines, err = control.FetchWhy(ctx, control.SocketPath(*iface), from, to, port)
		var bad *control.BadRequestError
		switch {
		case errors.As(err, &bad):
			return usage("%s", bad.Msg)
		case errors.Is(err, control.ErrNotRunning):
			return fmt.Errorf("policy why: interface %s: %w (hint: start the node with 'overlay-node up', or pass -c MESH)", *iface, err)
		case err != nil:
			return fmt.Errorf("policy why: interface %s: %w", *iface, err)
		}
	} else {
		mesh, err := loadMesh(*meshPath, stderr)
		if err != nil {
			return err
		}
		lines, err = explainFlow(mesh.Policy(), nodeEnds(mesh), mesh.Path, from, to, port)
		var bad *badFlowError
		if errors.As(err, &bad) {
			return usage("%s", bad.msg)
		}
		if err != nil {
			return err
		}
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return nil
}

// badFlowError is a FROM, TO or PORT/PROTO that names no flow.
type badFlowError struct{ msg string }

func (e *badFlowError) Error() string { return e.msg }

// explainFlow decides the flows from from to to on port by p, one line for
// each pair of addresses of the same family: "allow" or "deny", then why.
// nodes are the mesh's nodes, meshPath names the mesh in errors.
func explainFlow(p *policy.Policy, nodes []end, meshPath, fromArg, toArg, portArg string) ([]string, error) {
	port, err := policy.ParsePorts(portArg)
	if err != nil || port.Any || port.Lo != port.Hi {
		return nil, &badFlowError{fmt.Sprintf("%q is not one port and protocol: write e.g. 5432/tcp, 53/udp or icmp", portArg)}
	}
	from, err := resolveEnd(nodes, meshPath, fromArg)
	if err != nil {
		return nil, err
	}
	to, err := resolveEnd(nodes, meshPath, toArg)
	if err != nil {
		return nil, err
	}
	var lines []string
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
			lines = append(lines, fmt.Sprintf("%s  %s", word, p.Explain(v, from.describe(s), to.describe(d), proto, port.Lo)))
		}
	}
	if len(lines) == 0 {
		return nil, errors.New("policy why: " + fromArg + " and " + toArg + " have no addresses of the same family")
	}
	return lines, nil
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

// nodeEnds returns every node of mesh with its addresses.
func nodeEnds(mesh *config.Mesh) []end {
	out := make([]end, len(mesh.Nodes))
	for i, n := range mesh.Nodes {
		out[i].node = n.Name
		for _, a := range n.Addresses {
			out[i].addrs = append(out[i].addrs, a.Addr())
		}
	}
	return out
}

// resolveEnd resolves a node name ("web1" or "node:web1") or an address.
func resolveEnd(nodes []end, meshPath, s string) (end, error) {
	name := strings.TrimPrefix(s, "node:")
	for _, n := range nodes {
		if n.node == name {
			return n, nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return end{addrs: []netip.Addr{a.Unmap()}}, nil
	}
	return end{}, &badFlowError{fmt.Sprintf("%q is neither a node of %s nor an address", s, meshPath)}
}
