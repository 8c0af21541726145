package config

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/overlay-node/overlay-node/policy"
)

// Segmentation: [[allow]] rules, [[expect]] policy tests, node groups and
// the [mesh] deny and conntrack_max keys.

// Defaults and limits of segmentation.
const (
	DefaultDeny         = "reject" // [mesh] deny when the file has none
	DefaultConntrackMax = 65536    // [mesh] conntrack_max when the file has none
	MaxConntrackMax     = 1 << 24  // about 2 GB of flow state at most
)

// Allow is one [[allow]] rule: traffic from From to To on Ports passes.
type Allow struct {
	Name  string         // unique; "allow-N" when the file gives none (N its position, from 1)
	From  []Selector     // sources
	To    []Selector     // destinations
	Ports []policy.Ports // nil means any protocol and port
	Line  int            // line of its [[allow]] header; zero when built in code

	src *source
}

// Expect is one [[expect]]: a policy test that check, up and reload fail on
// when it does not hold.
type Expect struct {
	From, To Selector     // SelectNode (its addresses) or a single address
	Port     policy.Ports // a single TCP or UDP port, or ICMP
	Allow    bool         // verdict = "allow"; false for "deny"
	Line     int          // line of its [[expect]] header; zero when built in code

	src *source
}

// The keys of the segmentation tables.
var (
	allowKeys  = []string{"name", "from", "to", "ports"}
	expectKeys = []string{"from", "to", "port", "verdict"}
)

func init() {
	for k, v := range map[string]string{
		"mesh.deny":          `deny = "reject", or deny = "drop"`,
		"mesh.conntrack_max": `conntrack_max = 65536`,
		"node.groups":        `groups = ["web", "prod"]`,
		"allow.name":         `name = "web-to-db"`,
		"allow.from":         `from = ["group:web", "node:admin", "10.100.0.0/24", "*"]`,
		"allow.to":           `to = ["group:db"]`,
		"allow.ports":        `ports = ["5432/tcp", "8000-8100/tcp", "53/udp", "icmp"], or ports = ["any"]`,
		"expect.from":        `from = "node:web1", or from = "10.100.0.5"`,
		"expect.to":          `to = "node:db1"`,
		"expect.port":        `port = "5432/tcp", "53/udp" or "icmp"`,
		"expect.verdict":     `verdict = "allow", or verdict = "deny"`,
	} {
		examples[k] = v
	}
}

// strs decodes an array of strings, recording where each element is.
// Elements that are not strings are reported and left out.
func (d *decoder) strs(src *source, table, key string, v *value) ([]string, []position) {
	f := record(src, key, v)
	full := table + "." + key
	if v.kind != kindArray {
		d.typeError(src, table, key, v, "an array of strings")
		return nil, nil
	}
	out := []string{}
	var at []position
	for _, e := range v.elems {
		if e.kind != kindString {
			d.add(e.at, full, "must hold strings, not "+e.kind.describe(), "write it like "+examples[full])
			continue
		}
		out = append(out, e.text)
		at = append(at, e.at)
	}
	if len(out) < len(v.elems) && len(out) == 0 {
		src.bad[key] = true // reported; no "is empty" on top
	}
	f.elems = at
	return out, at
}

// groups decodes a node's groups; Validate checks the names.
func (d *decoder) groups(n *Node, v *value) {
	n.Groups, _ = d.strs(n.src, "node", "groups", v)
}

// arrayOfTables checks that v is [[name]] tables and returns them.
func (d *decoder) arrayOfTables(m *Mesh, name string, v *value) []*value {
	m.src.fields[name] = &field{val: v.at}
	hint := fmt.Sprintf("start every %s with [[%s]] (double brackets)", map[string]string{"allow": "rule", "expect": "expectation"}[name], name)
	if v.kind != kindArray {
		d.add(v.key, name, "must be an array of tables, not "+v.kind.describe(), hint)
		return nil
	}
	var out []*value
	for _, e := range v.elems {
		if e.kind != kindTable {
			d.add(e.at, name, "must be a table, not "+e.kind.describe(), hint)
			continue
		}
		out = append(out, e)
	}
	return out
}

func (d *decoder) allows(m *Mesh, v *value) {
	for _, e := range d.arrayOfTables(m, "allow", v) {
		m.Allow = append(m.Allow, d.allow(e, len(m.Allow)+1))
	}
}

func (d *decoder) allow(v *value, n int) Allow {
	a := Allow{Name: "allow-" + strconv.Itoa(n), Line: v.at.Line, src: newSource(v.at)}
	var sug []string
	for _, k := range v.table.keys {
		e := v.table.vals[k]
		switch k {
		case "name":
			if s, ok := d.str(a.src, "allow", k, e); ok {
				a.Name = s
			}
		case "from":
			a.From = d.selectors(a.src, k, e)
		case "to":
			a.To = d.selectors(a.src, k, e)
		case "ports":
			ss, at := d.strs(a.src, "allow", k, e)
			a.Ports = []policy.Ports{}
			for i, s := range ss {
				p, err := policy.ParsePorts(s)
				if err != nil {
					d.add(at[i], "allow.ports", portsMessage(err), `write "5432/tcp", a range "8000-8100/tcp", "53/udp", "icmp", or "any"; ports run from 1 to 65535`)
					continue
				}
				a.Ports = append(a.Ports, p)
			}
			if len(a.Ports) < len(ss) && len(a.Ports) == 0 {
				a.src.bad[k] = true
			}
		default:
			sug = append(sug, d.unknown(e, "allow", k, allowKeys))
		}
	}
	misspelt(a.src, sug)
	return a
}

// portsMessage is a ParsePorts error without the sentinel's words.
func portsMessage(err error) string {
	s := err.Error()
	if p := policy.ErrPorts.Error() + " "; len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// selectors decodes a list of selectors. Elements that fail to parse are
// reported and left out.
func (d *decoder) selectors(src *source, key string, v *value) []Selector {
	ss, at := d.strs(src, "allow", key, v)
	out := []Selector{}
	var kept []position
	for i, s := range ss {
		sel, msg, hint := parseSelector(s)
		if msg != "" {
			d.add(at[i], "allow."+key, msg, hint)
			continue
		}
		out = append(out, sel)
		kept = append(kept, at[i])
	}
	if len(out) < len(ss) && len(out) == 0 {
		src.bad[key] = true
	}
	if f := src.fields[key]; f != nil {
		f.elems = kept
	}
	return out
}

func (d *decoder) expects(m *Mesh, v *value) {
	for _, e := range d.arrayOfTables(m, "expect", v) {
		m.Expect = append(m.Expect, d.expect(e))
	}
}

func (d *decoder) expect(v *value) Expect {
	x := Expect{Line: v.at.Line, src: newSource(v.at)}
	var sug []string
	for _, k := range v.table.keys {
		e := v.table.vals[k]
		switch k {
		case "from", "to":
			s, ok := d.str(x.src, "expect", k, e)
			if !ok {
				break
			}
			sel, msg, hint := parseSelector(s)
			if msg == "" && sel.Kind != SelectNode && !(sel.Kind == SelectPrefix && sel.Prefix.IsSingleIP()) {
				msg, hint = fmt.Sprintf("%q is not a node or an address", s), `an expectation tests one flow: write "node:NAME" or an address such as "10.100.0.5"`
			}
			if msg != "" {
				x.src.bad[k] = true
				d.add(e.at, "expect."+k, msg, hint)
				break
			}
			if k == "from" {
				x.From = sel
			} else {
				x.To = sel
			}
		case "port":
			s, ok := d.str(x.src, "expect", k, e)
			if !ok {
				break
			}
			p, err := policy.ParsePorts(s)
			switch {
			case err != nil:
				x.src.bad[k] = true
				d.add(e.at, "expect.port", portsMessage(err), `write one port, e.g. "5432/tcp" or "53/udp", or "icmp"`)
			case p.Any || p.Lo != p.Hi:
				x.src.bad[k] = true
				d.add(e.at, "expect.port", fmt.Sprintf("%q is not a single port", s), `an expectation tests one flow: write e.g. "5432/tcp", "53/udp" or "icmp"`)
			default:
				x.Port = p
			}
		case "verdict":
			s, ok := d.str(x.src, "expect", k, e)
			switch {
			case !ok:
			case s == "allow" || s == "deny":
				x.Allow = s == "allow"
			default:
				x.src.bad[k] = true
				d.add(e.at, "expect.verdict", fmt.Sprintf("%q is not a verdict", s), `write verdict = "allow" or verdict = "deny"`)
			}
		default:
			sug = append(sug, d.unknown(e, "expect", k, expectKeys))
		}
	}
	misspelt(x.src, sug)
	return x
}

// segmentation checks groups, rules and expectations. It runs after the
// nodes are checked, and tests the expectations only when nothing else is
// wrong (decoded is false when decoding found problems), since their
// outcome depends on the whole mesh.
func (v *validator) segmentation(decoded bool) {
	m := v.m
	if m.Deny != "" && m.Deny != "reject" && m.Deny != "drop" {
		v.add(m.src, "mesh", "deny", -1, fmt.Sprintf("%q is not reject or drop", m.Deny),
			`"reject" tells the sender at once (ICMP administratively prohibited, or a TCP reset); "drop" stays silent`)
	}
	if m.ConntrackMax != 0 {
		if msg, hint := conntrackProblem(int64(m.ConntrackMax)); msg != "" {
			v.add(m.src, "mesh", "conntrack_max", -1, msg, hint)
		}
	}

	nodes := make(map[string]bool)
	var names []string
	for i := range m.Nodes {
		n := &m.Nodes[i]
		nodes[n.Name] = true
		names = append(names, n.Name)
		seen := make(map[string]bool)
		for j, g := range n.Groups {
			if g == "" {
				v.add(n.src, "node", "groups", j, "a group name is empty", "remove it, or write a DNS label")
				continue
			}
			if msg, hint := labelProblem(g); msg != "" {
				v.add(n.src, "node", "groups", j, msg, hint)
				continue
			}
			if seen[g] {
				v.add(n.src, "node", "groups", j, fmt.Sprintf("%q is listed twice", g), "remove the duplicate")
			}
			seen[g] = true
		}
	}

	checkNodes := func(src *source, table, key string, sels []Selector) {
		for j, s := range sels {
			if s.Kind == SelectNode && !nodes[s.Name] {
				hint := "name a node of the mesh, or use group:NAME for nodes that join later"
				if sug := suggest(s.Name, names); sug != "" {
					hint = fmt.Sprintf(`did you mean "node:%s"? %s`, sug, hint)
				}
				v.add(src, table, key, j, fmt.Sprintf("no node is named %q", s.Name), hint)
			}
		}
	}
	rules := make(map[string]int)
	for i := range m.Allow {
		a := &m.Allow[i]
		if a.Name == "" {
			v.add(a.src, "allow", "name", -1, "is empty", `remove the key for the default "allow-N", or write a DNS label`)
		} else if msg, hint := labelProblem(a.Name); msg != "" {
			v.add(a.src, "allow", "name", -1, msg, hint)
		} else {
			if j, dup := rules[a.Name]; dup {
				v.add(a.src, "allow", "name", -1, fmt.Sprintf("%q is already the name of the rule%s", a.Name, whereRule(m.Allow[j].Line)),
					`give every rule a unique name; a rule without one is named "allow-N" after its position`)
			} else {
				rules[a.Name] = i
			}
		}
		for _, key := range []string{"from", "to"} {
			sels := a.From
			if key == "to" {
				sels = a.To
			}
			switch {
			case len(sels) == 0 && !a.src.has(key):
				v.add(a.src, "allow", key, -1, "missing", fmt.Sprintf(`add %s = [...]: %s`, key, selectorHint))
			case len(sels) == 0:
				v.add(a.src, "allow", key, -1, "is empty", selectorHint)
			}
			checkNodes(a.src, "allow", key, sels)
		}
		if a.Ports != nil && len(a.Ports) == 0 {
			v.add(a.src, "allow", "ports", -1, "is empty, so the rule allows nothing", `remove the key, or write ports = ["any"], to allow every protocol and port`)
		}
	}

	for i := range m.Expect {
		x := &m.Expect[i]
		for _, key := range []string{"from", "to", "port", "verdict"} {
			if !x.src.has(key) && x.src != nil {
				v.add(x.src, "expect", key, -1, "missing", "write it like "+examples["expect."+key])
			}
		}
		checkNodes(x.src, "expect", "from", []Selector{x.From})
		checkNodes(x.src, "expect", "to", []Selector{x.To})
	}
	if decoded && len(v.errs) == 0 {
		v.expectations()
	}
}

func whereRule(line int) string {
	if line > 0 {
		return fmt.Sprintf(" at line %d", line)
	}
	return ""
}

// conntrackProblem checks the size of the connection tracking table.
func conntrackProblem(n int64) (msg, hint string) {
	if n < 1 || n > MaxConntrackMax {
		return fmt.Sprintf("%d is out of range 1..%d", n, MaxConntrackMax),
			"the table holds one entry per tracked flow, about 128 bytes each; the default is 65536"
	}
	return "", ""
}

// expectations tests every [[expect]] against the compiled rules.
func (v *validator) expectations() {
	m := v.m
	p := m.Policy()
	for i := range m.Expect {
		x := &m.Expect[i]
		srcs, dsts := m.addrsOf(x.From), m.addrsOf(x.To)
		tested := false
		for _, s := range srcs {
			for _, d := range dsts {
				if s.Is4() != d.Is4() {
					continue
				}
				tested = true
				proto, port := x.Port.Proto, x.Port.Lo
				if proto == policy.ProtoICMP && s.Is6() {
					proto = policy.ProtoICMPv6
				}
				got := p.Decide(s, d, proto, port)
				if got.Allow == x.Allow {
					continue
				}
				from, to := m.describe(x.From, s), m.describe(x.To, d)
				v.add(x.src, "", "expect", -1, fmt.Sprintf("expected %s, got %s: %s", verdictWord(x.Allow), verdictWord(got.Allow), p.Explain(got, from, to, proto, port)),
					"change the [[allow]] rules or the expectation, whichever is wrong; overlay-node policy why explains a verdict")
				return
			}
		}
		if !tested {
			v.add(x.src, "", "expect", -1, fmt.Sprintf("%s and %s have no addresses of the same family", x.From, x.To),
				"test an IPv4 address against an IPv4 address, or IPv6 against IPv6")
		}
	}
}

func verdictWord(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// addrsOf returns the addresses an expectation's selector stands for: a
// node's overlay addresses, or the address itself.
func (m *Mesh) addrsOf(s Selector) []netip.Addr {
	switch s.Kind {
	case SelectNode:
		if n := m.node(s.Name); n != nil {
			var out []netip.Addr
			for _, a := range n.Addresses {
				out = append(out, a.Addr())
			}
			return out
		}
	case SelectPrefix:
		return []netip.Addr{s.Prefix.Addr()}
	}
	return nil
}

// describe names an address for messages: "node web1 (10.100.0.1)" or "10.100.0.1".
func (m *Mesh) describe(s Selector, a netip.Addr) string {
	if s.Kind == SelectNode {
		return fmt.Sprintf("node %s (%s)", s.Name, a)
	}
	return a.String()
}

func (m *Mesh) node(name string) *Node {
	for i := range m.Nodes {
		if m.Nodes[i].Name == name {
			return &m.Nodes[i]
		}
	}
	return nil
}

// Policy compiles the [[allow]] rules, resolving their selectors: a node
// stands for its addresses (as host prefixes), subnets and container
// networks, a group for those
// of every node in it, and "*" for every IPv4 and IPv6 address. It returns
// nil, the policy that allows everything, when the mesh has no rules. The
// mesh should be valid.
func (m *Mesh) Policy() *policy.Policy {
	if len(m.Allow) == 0 {
		return nil
	}
	rules := make([]policy.Rule, len(m.Allow))
	for i := range m.Allow {
		a := &m.Allow[i]
		rules[i] = policy.Rule{
			Name:  a.Name,
			Pos:   fmt.Sprintf("%s:%d", m.Path, a.Line),
			From:  m.resolve(a.From),
			To:    m.resolve(a.To),
			Ports: a.Ports,
		}
		if m.Path == "" {
			rules[i].Pos = "rule " + strconv.Itoa(i+1)
		}
	}
	return policy.Compile(rules)
}

// resolve turns selectors into prefixes.
func (m *Mesh) resolve(sels []Selector) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range sels {
		switch s.Kind {
		case SelectAll:
			out = append(out, netip.PrefixFrom(netip.IPv4Unspecified(), 0), netip.PrefixFrom(netip.IPv6Unspecified(), 0))
		case SelectPrefix:
			out = append(out, s.Prefix)
		case SelectNode:
			if n := m.node(s.Name); n != nil {
				out = append(out, n.AllowedIPs()...)
			}
		case SelectGroup:
			for i := range m.Nodes {
				if n := &m.Nodes[i]; hasGroup(n, s.Name) {
					out = append(out, n.AllowedIPs()...)
				}
			}
		}
	}
	return out
}

func hasGroup(n *Node, g string) bool {
	for _, h := range n.Groups {
		if h == g {
			return true
		}
	}
	return false
}

// Warnings returns what is suspect in a valid mesh but does not stop it
// from working, each marked as a warning, ordered by position: a group that
// no node has (rules may be written before their nodes join).
func (m *Mesh) Warnings() ErrorList {
	var out ErrorList
	for i := range m.Allow {
		a := &m.Allow[i]
		for _, key := range []string{"from", "to"} {
			sels := a.From
			if key == "to" {
				sels = a.To
			}
			for j, s := range sels {
				if s.Kind != SelectGroup || m.groupHasNodes(s.Name) {
					continue
				}
				at := a.src.pos(key, j)
				out = append(out, &Error{File: m.Path, Line: at.Line, Col: at.Col, Key: "allow." + key, Warning: true,
					Msg:  fmt.Sprintf("no node is in group %q, so this selector matches nothing", s.Name),
					Hint: fmt.Sprintf(`add "%s" to the groups of its nodes; until then the rule admits nothing through it`, s.Name)})
			}
		}
	}
	out.sort()
	return out
}

func (m *Mesh) groupHasNodes(g string) bool {
	for i := range m.Nodes {
		if hasGroup(&m.Nodes[i], g) {
			return true
		}
	}
	return false
}
