package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/internal/netaddr"
)

// Validate checks the whole mesh and returns an ErrorList with every
// problem, or nil. Parse and Load already call it; call it again after
// building or changing a Mesh in code. Problems are placed at the key they
// concern when the Mesh came from a file.
func (m *Mesh) Validate() error {
	return m.validate(true).err()
}

// validator collects the problems of one mesh.
type validator struct {
	m    *Mesh
	errs ErrorList
}

// add reports a problem with key of the table src describes (element elem
// of a list, or the whole value when elem is negative). Problems with values
// that could not be decoded were reported by the decoder and are skipped.
func (v *validator) add(src *source, table, key string, elem int, msg, hint string) {
	if src.isBad(key) {
		return
	}
	at := src.pos(key, elem)
	full := key
	if table != "" {
		full = table + "." + key
	}
	v.errs = append(v.errs, &Error{File: v.m.Path, Line: at.Line, Col: at.Col, Key: full, Msg: msg, Hint: hint})
}

// where describes the position of another node's key for cross references:
// " (line 5)", or "" when positions are unknown.
func where(src *source, key string, elem int) string {
	if at := src.pos(key, elem); at.Line > 0 {
		return fmt.Sprintf(" (line %d)", at.Line)
	}
	return ""
}

// label names a node in messages about other nodes.
func (n *Node) label(i int) string {
	if n.Name != "" {
		return fmt.Sprintf("node %q", n.Name)
	}
	return fmt.Sprintf("node #%d", i+1)
}

// validate checks m; decoded is false when decoding it found problems.
func (m *Mesh) validate(decoded bool) ErrorList {
	v := &validator{m: m}
	v.mesh()
	v.nodes()
	v.segmentation(decoded)
	v.dns()
	return v.errs
}

func (v *validator) mesh() {
	m, src := v.m, v.m.src
	switch {
	case m.Name == "":
		v.add(src, "mesh", "name", -1, "missing", `add name = "prod" under [mesh]; it appears in status and metrics`)
	default:
		if msg, hint := labelProblem(m.Name); msg != "" {
			v.add(src, "mesh", "name", -1, msg, hint)
		}
	}
	if msg, hint := portProblem(int64(m.Port)); msg != "" {
		v.add(src, "mesh", "port", -1, msg, hint)
	}
	if msg, hint := mtuProblem(int64(m.MTU)); msg != "" {
		v.add(src, "mesh", "mtu", -1, msg, hint)
	}
	v.pool()
	if len(m.Nodes) == 0 && !src.has("pool") {
		v.add(src, "", "node", -1, "the mesh has no nodes", "add a [[node]] table for every host, each with name, public_key and address")
	}
}

func (v *validator) nodes() {
	names := make(map[string]int)
	keys := make(map[crypto.PublicKey]int)
	addrs := make(map[netip.Addr]addrRef) // the valid overlay addresses
	var valid []addrRef
	endpoints := make(map[string]int)

	nodes := v.m.Nodes
	for i := range nodes {
		n := &nodes[i]
		src := n.src

		// Name.
		if n.Name == "" {
			v.add(src, "node", "name", -1, "missing", "add name = \"...\": a DNS label, unique in the mesh")
		} else if msg, hint := labelProblem(n.Name); msg != "" {
			v.add(src, "node", "name", -1, msg, hint)
		} else if j, dup := names[n.Name]; dup {
			v.add(src, "node", "name", -1, fmt.Sprintf("%q is already the name of the node%s", n.Name, whereNode(&nodes[j])),
				"give every node a unique name")
		} else {
			names[n.Name] = i
		}

		// Public key.
		switch {
		case n.PublicKey.IsZero() && !src.has("public_key"):
			v.add(src, "node", "public_key", -1, fmt.Sprintf("missing in %s", n.label(i)),
				"run overlay-node genkey > node.key on the host, then paste the output of overlay-node pubkey < node.key")
		case n.PublicKey.IsZero():
			v.add(src, "node", "public_key", -1, "is all zeros, which is not a usable key", keyHint)
		case n.PublicKey.IsLowOrder():
			v.add(src, "node", "public_key", -1, "is a low-order point that no handshake can use", keyHint)
		default:
			if j, dup := keys[n.PublicKey]; dup {
				v.add(src, "node", "public_key", -1, fmt.Sprintf("is already the key of %s%s", nodes[j].label(j), where(nodes[j].src, "public_key", -1)),
					"every node needs its own key pair: run overlay-node genkey on each host")
			} else {
				keys[n.PublicKey] = i
			}
		}

		// Addresses.
		if len(n.Addresses) == 0 {
			msg := fmt.Sprintf("missing in %s", n.label(i))
			if src.has("address") {
				msg = "is empty"
			}
			v.add(src, "node", "address", -1, msg, addressHint)
		}
		for j, a := range n.Addresses {
			if msg, hint := addressProblem(a); msg != "" {
				v.add(src, "node", "address", j, msg, hint)
				continue
			}
			if r, dup := addrs[a.Addr()]; dup {
				if r.node == i {
					v.add(src, "node", "address", j, fmt.Sprintf("%s is listed twice", a.Addr()), "remove the duplicate")
				} else {
					v.add(src, "node", "address", j, fmt.Sprintf("%s is already the address of %s%s", a.Addr(), nodes[r.node].label(r.node), where(nodes[r.node].src, "address", r.elem)),
						"give every node its own overlay address")
				}
				continue
			}
			r := addrRef{a.Addr(), i, j}
			addrs[r.addr] = r
			valid = append(valid, r) // the same, in file order
		}

		// Endpoint.
		if n.Endpoint != "" || src.has("endpoint") {
			norm, msg, hint := endpointProblem(n.Endpoint)
			if msg != "" {
				v.add(src, "node", "endpoint", -1, msg, hint)
			} else if j, dup := endpoints[norm]; dup {
				v.add(src, "node", "endpoint", -1, fmt.Sprintf("%s is already the endpoint of %s%s", n.Endpoint, nodes[j].label(j), where(nodes[j].src, "endpoint", -1)),
					"two nodes cannot listen on the same address and port: correct the address, or give one node a different port")
			} else {
				endpoints[norm] = i
			}
		}

		// Keepalive and port.
		if n.Keepalive != 0 {
			if msg, hint := keepaliveProblem(n.Keepalive); msg != "" {
				v.add(src, "node", "keepalive", -1, msg, hint)
			}
		}
		if msg, hint := portProblem(int64(n.Port)); msg != "" {
			v.add(src, "node", "port", -1, msg, hint)
		}
	}

	// An endpoint that is another node's overlay address can only be reached
	// through the tunnel it is meant to carry.
	for i := range nodes {
		n := &nodes[i]
		ap, err := netip.ParseAddrPort(n.Endpoint)
		if err != nil {
			continue
		}
		if r, ok := addrs[ap.Addr().Unmap()]; ok {
			v.add(n.src, "node", "endpoint", -1, fmt.Sprintf("%s is the overlay address of %s%s, which is only reachable through the mesh", ap.Addr(), nodes[r.node].label(r.node), where(nodes[r.node].src, "address", r.elem)),
				"use the address peers reach the host at outside the mesh: its LAN or public IP")
		}
	}

	v.subnets(valid)
}

// whereNode describes where a node starts: " at line 5", or "" without positions.
func whereNode(n *Node) string {
	if n.Line > 0 {
		return fmt.Sprintf(" at line %d", n.Line)
	}
	return ""
}

// addrRef is an overlay address and the node (and element of its list) it
// belongs to.
type addrRef struct {
	addr       netip.Addr
	node, elem int
}

// subnets checks that every address routes to exactly one node: subnets and
// container networks are canonical, no subnet contains an address of
// another node, no container network contains any overlay address, and no
// two of them overlap, except subnets of one node. addrs holds the valid
// overlay addresses. Both checks sort, so that meshes of thousands of nodes
// validate quickly.
func (v *validator) subnets(addrs []addrRef) {
	nodes := v.m.Nodes
	slices.SortFunc(addrs, func(a, b addrRef) int { return a.addr.Compare(b.addr) })

	var subnets []routed
	for i := range nodes {
		n := &nodes[i]
		for _, key := range []string{"subnets", "containers"} {
			list := n.Subnets
			if key == "containers" {
				list = n.Containers
				v.containerFamilies(n)
			}
			for j, s := range list {
				msg, hint := subnetProblem(s)
				if msg == "" && key == "containers" {
					msg, hint = containerProblem(s)
				}
				if msg != "" {
					v.add(n.src, "node", key, j, msg, hint)
					continue
				}
				r := routed{s, netaddr.Last(s), key, i, j}
				subnets = append(subnets, r)
				v.containsAddress(r, addrs)
			}
		}
	}

	// Two prefixes overlap when one contains the other. Sorted by first
	// address, and wider first, every prefix overlaps exactly the prefixes
	// still open on the stack: those whose range reaches its start.
	slices.SortStableFunc(subnets, func(a, b routed) int {
		if c := a.p.Addr().Compare(b.p.Addr()); c != 0 {
			return c
		}
		return a.p.Bits() - b.p.Bits()
	})
	var open []routed
	for _, s := range subnets {
		for len(open) > 0 && open[len(open)-1].last.Less(s.p.Addr()) {
			open = open[:len(open)-1]
		}
		for _, o := range open {
			v.overlap(o, s)
		}
		open = append(open, s)
	}
}

// routed is a valid subnet or container network, and the key, node and
// element of its list it was written at.
type routed struct {
	p          netip.Prefix
	last       netip.Addr
	key        string // "subnets" or "containers"
	node, elem int
}

// containsAddress reports the overlay addresses r swallows: those of other
// nodes for a subnet, any for a container network. One error per prefix,
// however many addresses it swallows.
func (v *validator) containsAddress(r routed, addrs []addrRef) {
	nodes := v.m.Nodes
	var first *addrRef
	contained := 0
	k, _ := slices.BinarySearchFunc(addrs, r.p.Addr(), func(a addrRef, t netip.Addr) int { return a.addr.Compare(t) })
	for ; k < len(addrs) && r.p.Contains(addrs[k].addr); k++ {
		if addrs[k].node != r.node || r.key == "containers" {
			if first == nil {
				first = &addrs[k]
			}
			contained++
		}
	}
	if first == nil {
		return
	}
	o := &nodes[first.node]
	more := ""
	switch {
	case contained == 2:
		more = ", and 1 more overlay address"
	case contained > 2:
		more = fmt.Sprintf(", and %d more overlay addresses", contained-1)
	}
	hint := "narrow the subnet so that it leaves out the overlay addresses of other nodes"
	if r.key == "containers" {
		hint = "give containers a network of their own, outside the overlay addresses"
	}
	v.add(nodes[r.node].src, "node", r.key, r.elem, fmt.Sprintf("%s contains %s, the address of %s%s%s", r.p, first.addr, o.label(first.node), where(o.src, "address", first.elem), more), hint)
}

// overlap reports two prefixes that overlap, at whichever of the two comes
// later in the file. Overlapping subnets of one node are harmless.
func (v *validator) overlap(a, b routed) {
	nodes := v.m.Nodes
	early, late := a, b
	if late.node < early.node || late.node == early.node && (late.key == "subnets" && early.key == "containers" || late.key == early.key && late.elem < early.elem) {
		early, late = late, early
	}
	ln, en := &nodes[late.node], &nodes[early.node]
	switch {
	case late.p == early.p && late.node == early.node && late.key == early.key:
		v.add(ln.src, "node", late.key, late.elem, fmt.Sprintf("%s is listed twice", late.p), "remove the duplicate")
	case late.node != early.node:
		v.add(ln.src, "node", late.key, late.elem, fmt.Sprintf("%s overlaps %s of %s%s", late.p, early.p, en.label(early.node), where(en.src, early.key, early.elem)),
			"subnets and container networks of different nodes must not overlap, so that every address routes to exactly one node")
	case late.key != early.key || late.key == "containers":
		v.add(ln.src, "node", late.key, late.elem, fmt.Sprintf("%s overlaps %s%s of the same node", late.p, early.p, where(en.src, early.key, early.elem)),
			"a container network must be the node's own: keep it apart from its subnets and its other container network")
	}
}

// portProblem checks a UDP port.
func portProblem(n int64) (msg, hint string) {
	if n < 1 || n > 65535 {
		return fmt.Sprintf("%d is out of range 1..65535", n), portHint
	}
	return "", ""
}

// mtuProblem checks the TUN MTU.
func mtuProblem(n int64) (msg, hint string) {
	if n < MinMTU || n > MaxMTU {
		return fmt.Sprintf("%d is out of range %d..%d", n, MinMTU, MaxMTU),
			fmt.Sprintf("%d suits WireGuard over IPv4 and IPv6 on a 1500-byte link; IPv6 needs at least %d", encap.DefaultMTU, MinMTU)
	}
	return "", ""
}

// keepaliveProblem checks a non-zero keepalive interval.
func keepaliveProblem(d time.Duration) (msg, hint string) {
	switch {
	case d < MinKeepalive || d > MaxKeepalive:
		return fmt.Sprintf("%s is out of range 1s..65535s", d), `25s keeps most NAT mappings open; remove the key to turn keepalive off`
	case d%time.Second != 0:
		return fmt.Sprintf("%s is not a whole number of seconds", d), fmt.Sprintf(`WireGuard counts keepalive in seconds: write e.g. "%s"`, d.Round(time.Second))
	}
	return "", ""
}

// addressProblem checks an overlay address: a unicast host address inside
// its prefix.
func addressProblem(p netip.Prefix) (msg, hint string) {
	a, bits := p.Addr(), p.Bits()
	switch {
	case a.Is4In6():
		return fmt.Sprintf("%s is an IPv4-mapped IPv6 address", p), fmt.Sprintf(`write the IPv4 form, e.g. "%s/%d"`, a.Unmap(), max(bits-96, 0))
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast():
		return fmt.Sprintf("%s is not a unicast host address", p), addressHint
	}
	// /31 and /32 (/127 and /128) have no network or broadcast address.
	if bits > a.BitLen()-2 {
		return "", ""
	}
	if a == p.Masked().Addr() {
		return fmt.Sprintf("%s is the network address of %s, not a host address", a, p.Masked()),
			fmt.Sprintf(`use a host address inside the network, e.g. "%s/%d"`, a.Next(), bits)
	}
	if a.Is4() && a == netaddr.Last(p) {
		return fmt.Sprintf("%s is the broadcast address of %s, not a host address", a, p.Masked()),
			fmt.Sprintf(`use a host address inside the network, e.g. "%s/%d"`, a.Prev(), bits)
	}
	return "", ""
}

// subnetProblem checks a subnet behind a node.
func subnetProblem(p netip.Prefix) (msg, hint string) {
	if p.Addr().Is4In6() {
		return fmt.Sprintf("%s is an IPv4-mapped IPv6 network", p), fmt.Sprintf(`write the IPv4 form, e.g. "%s"`, netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
	}
	if p != p.Masked() {
		return fmt.Sprintf("%s has host bits set", p), fmt.Sprintf(`write the network address: "%s"`, p.Masked())
	}
	return "", ""
}

// labelProblem checks that s is a DNS label in lowercase (RFC 1123), so
// that names can be used in host names and metric labels as they are.
func labelProblem(s string) (msg, hint string) {
	ok := len(s) <= 63 && s[0] != '-' && s[len(s)-1] != '-'
	for i := 0; ok && i < len(s); i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if ok {
		return "", ""
	}
	hint = "use up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
	if sug := suggestLabel(s); sug != "" {
		hint += fmt.Sprintf(`, e.g. "%s"`, sug)
	}
	return fmt.Sprintf("%q is not a DNS label", s), hint
}

// suggestLabel turns s into a DNS label as best it can, or returns "".
func suggestLabel(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 63 {
			break
		}
	}
	return strings.TrimRight(b.String(), "-")
}
