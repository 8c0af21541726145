package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Service discovery: [mesh] domain and dns_upstream, and the [[service]]
// tables. Every node answers DNS for the domain; see DESIGN.md.

// Service is one [[service]] of the mesh: a name in DNS for a set of nodes
// running the same thing on the same port.
type Service struct {
	Name     string   // DNS label: <name>.<domain> and _<name>._<protocol>.<domain>
	Nodes    []string // names of the nodes that run an instance, in file order
	Port     uint16   // the port the instances listen on, for SRV records
	Protocol string   // "tcp" or "udp"
	Line     int      // line of the [[service]] header; zero for a Service built in code

	src *source
}

// The keys of [[service]], and the limits of the DNS settings.
var serviceKeys = []string{"name", "nodes", "port", "protocol"}

// MaxDomainLen is the longest [mesh] domain: it leaves room for the longest
// name the zone builds under it, _<63-byte label>._tcp.<domain>, within the
// 253 characters of a DNS name.
const MaxDomainLen = 253 - len("_._tcp.") - 63

const (
	domainHint   = `write a DNS name of lowercase labels separated by dots, e.g. domain = "mesh.internal"`
	upstreamHint = `write the IP address and port of a DNS server, e.g. "192.0.2.53:53" or "[2001:db8::53]:53"`
)

func init() {
	examples["mesh.domain"] = `domain = "mesh.internal"`
	examples["mesh.dns_upstream"] = `dns_upstream = ["192.0.2.53:53"], or [] to refuse names outside the domain`
	examples["service.name"] = `name = "postgres"`
	examples["service.nodes"] = `nodes = ["db1", "db2"]`
	examples["service.port"] = `port = 5432`
	examples["service.protocol"] = `protocol = "tcp"`
}

// meshDNS decodes the DNS keys of [mesh]: domain and dns_upstream.
func (d *decoder) meshDNS(m *Mesh, k string, e *value) {
	switch k {
	case "domain":
		if s, ok := d.str(m.src, "mesh", k, e); ok {
			m.Domain = strings.ToLower(strings.TrimSuffix(s, "."))
		}
	case "dns_upstream":
		f := record(m.src, k, e)
		if e.kind != kindArray {
			d.typeError(m.src, "mesh", k, e, "an array of strings")
			return
		}
		m.DNSUpstream = []netip.AddrPort{} // set, even when empty: [] refuses outside names
		for _, el := range e.elems {
			if el.kind != kindString {
				d.add(el.at, "mesh.dns_upstream", "must hold strings, not "+el.kind.describe(), "write it like "+examples["mesh.dns_upstream"])
				continue
			}
			ap, msg, hint := parseUpstream(el.text)
			if msg != "" {
				d.add(el.at, "mesh.dns_upstream", msg, hint)
				continue
			}
			m.DNSUpstream = append(m.DNSUpstream, ap)
			f.elems = append(f.elems, el.at)
		}
		if len(m.DNSUpstream) < len(e.elems) {
			m.src.bad[k] = true // reported; no checks of the rest on top
		}
	}
}

// parseUpstream parses one dns_upstream entry: an IP address and a port.
func parseUpstream(s string) (netip.AddrPort, string, string) {
	ap, err := netip.ParseAddrPort(s)
	if err == nil {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		switch a := ap.Addr(); {
		case ap.Port() == 0:
			return ap, fmt.Sprintf("%q has port 0", s), fmt.Sprintf(`DNS servers listen on port 53: "%s"`, netip.AddrPortFrom(a, 53))
		case a.IsUnspecified(), a.IsMulticast():
			return ap, fmt.Sprintf("%s is not a unicast address", a), upstreamHint
		}
		return ap, "", ""
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return ap, fmt.Sprintf("%q has no port", s), fmt.Sprintf(`add the port, e.g. "%s"`, netip.AddrPortFrom(a, 53))
	}
	if host, _, found := strings.Cut(s, ":"); found && validHostname(host) {
		return ap, fmt.Sprintf("%q is a host name, not an IP address", s), "the DNS server cannot look up its own upstream: " + upstreamHint
	}
	if validHostname(s) {
		return ap, fmt.Sprintf("%q is a host name, not an IP address and port", s), "the DNS server cannot look up its own upstream: " + upstreamHint
	}
	return ap, fmt.Sprintf("%q is not an IP address and port", s), upstreamHint
}

// services decodes the [[service]] tables.
func (d *decoder) services(m *Mesh, v *value) {
	m.src.fields["service"] = &field{val: v.at}
	if v.kind != kindArray {
		d.add(v.key, "service", "must be an array of tables, not "+v.kind.describe(), "start every service with [[service]] (double brackets)")
		return
	}
	for _, e := range v.elems {
		if e.kind != kindTable {
			d.add(e.at, "service", "must be a table, not "+e.kind.describe(), "start every service with [[service]] (double brackets)")
			continue
		}
		m.Services = append(m.Services, d.service(e))
	}
}

func (d *decoder) service(v *value) Service {
	s := Service{Line: v.at.Line, src: newSource(v.at)}
	var sug []string
	for _, k := range v.table.keys {
		e := v.table.vals[k]
		switch k {
		case "name":
			if str, ok := d.str(s.src, "service", k, e); ok {
				s.Name = str
			}
		case "nodes":
			f := record(s.src, k, e)
			if e.kind != kindArray {
				d.typeError(s.src, "service", k, e, "an array of strings")
				break
			}
			s.Nodes = []string{}
			for _, el := range e.elems {
				if el.kind != kindString {
					d.add(el.at, "service.nodes", "must hold strings, not "+el.kind.describe(), "write it like "+examples["service.nodes"])
					continue
				}
				s.Nodes = append(s.Nodes, el.text)
				f.elems = append(f.elems, el.at)
			}
			if len(s.Nodes) < len(e.elems) {
				s.src.bad[k] = true
			}
		case "port":
			if p, ok := d.integer(s.src, "service", k, e); ok {
				if p < 1 || p > 65535 {
					s.src.bad[k] = true
					d.add(e.at, "service.port", fmt.Sprintf("%d is out of range 1..65535", p), "use the port the instances listen on, e.g. 5432")
					break
				}
				s.Port = uint16(p)
			}
		case "protocol":
			if str, ok := d.str(s.src, "service", k, e); ok {
				s.Protocol = str
			}
		default:
			sug = append(sug, d.unknown(e, "service", k, serviceKeys))
		}
	}
	misspelt(s.src, sug)
	return s
}

// dns checks the DNS settings and the services against the nodes.
func (v *validator) dns() {
	m, src := v.m, v.m.src
	if m.Domain == "" {
		if src.has("domain") {
			v.add(src, "mesh", "domain", -1, "is empty", domainHint)
		}
		if m.DNSUpstream != nil {
			v.add(src, "mesh", "dns_upstream", -1, "is set without a domain", `add domain = "mesh.internal" under [mesh] to turn DNS on, or remove dns_upstream`)
		}
		if len(m.Services) > 0 {
			s := &m.Services[0]
			v.errs = append(v.errs, &Error{File: m.Path, Line: s.src.header.Line, Col: s.src.header.Col, Key: "service",
				Msg: "services need a domain", Hint: `add domain = "mesh.internal" under [mesh] to turn DNS on`})
		}
	} else if msg, hint := domainProblem(m.Domain); msg != "" {
		v.add(src, "mesh", "domain", -1, msg, hint)
	}

	own := make(map[netip.Addr]string) // overlay addresses: an upstream there would loop through the mesh
	nodes := make(map[string]bool)
	for _, n := range m.Nodes {
		nodes[n.Name] = true
		for _, a := range n.Addresses {
			own[a.Addr()] = n.Name
		}
	}
	seen := make(map[netip.AddrPort]bool)
	for i, u := range m.DNSUpstream {
		if name, ok := own[u.Addr()]; ok {
			v.add(src, "mesh", "dns_upstream", i, fmt.Sprintf("%s is the overlay address of node %q, whose DNS server forwards here too", u.Addr(), name),
				"use a DNS server outside the mesh, e.g. the one in the host's /etc/resolv.conf")
		} else if seen[u] {
			v.add(src, "mesh", "dns_upstream", i, fmt.Sprintf("%s is listed twice", u), "remove the duplicate")
		}
		seen[u] = true
	}

	services := make(map[string]*Service)
	for i := range m.Services {
		s := &m.Services[i]
		ssrc := s.src
		switch {
		case s.Name == "":
			v.add(ssrc, "service", "name", -1, "missing", `add name = "...": a DNS label, unique among services and nodes`)
		case labelProblemOK(s.Name) != "":
			msg, hint := labelProblem(s.Name)
			v.add(ssrc, "service", "name", -1, msg, hint)
		case services[s.Name] != nil:
			v.add(ssrc, "service", "name", -1, fmt.Sprintf("%q is already the name of the service%s", s.Name, whereLine(services[s.Name].Line)), "give every service a unique name")
		case nodes[s.Name]:
			v.add(ssrc, "service", "name", -1, fmt.Sprintf("%q is already the name of a node, and both would be %s.%s", s.Name, s.Name, m.Domain),
				"give the service a name that no node has")
		default:
			services[s.Name] = s
		}

		if len(s.Nodes) == 0 {
			msg := "missing"
			if ssrc.has("nodes") {
				msg = "is empty"
			}
			v.add(ssrc, "service", "nodes", -1, msg, "list the names of the nodes that run the service, e.g. "+examples["service.nodes"])
		}
		inService := make(map[string]bool)
		for j, n := range s.Nodes {
			switch {
			case !nodes[n]:
				hint := "list names of [[node]] tables"
				if sug := suggest(n, nodeNames(m)); sug != "" {
					hint = fmt.Sprintf("did you mean %q? ", sug) + hint
				}
				v.add(ssrc, "service", "nodes", j, fmt.Sprintf("%q is not the name of a node", n), hint)
			case inService[n]:
				v.add(ssrc, "service", "nodes", j, fmt.Sprintf("%q is listed twice", n), "remove the duplicate")
			}
			inService[n] = true
		}

		if s.Port == 0 {
			v.add(ssrc, "service", "port", -1, "missing", "add the port the instances listen on, e.g. "+examples["service.port"])
		}
		switch s.Protocol {
		case "tcp", "udp":
		case "":
			v.add(ssrc, "service", "protocol", -1, "missing", `add protocol = "tcp" or protocol = "udp": SRV records are named _<service>._<protocol>`)
		default:
			hint := `write "tcp" or "udp"`
			if p := strings.ToLower(s.Protocol); p == "tcp" || p == "udp" {
				hint = fmt.Sprintf(`write it in lowercase: "%s"`, p)
			}
			v.add(ssrc, "service", "protocol", -1, fmt.Sprintf("%q is not a protocol", s.Protocol), hint)
		}
	}
}

// labelProblemOK returns the message of labelProblem, or "" for a good
// label, so that a switch can test it.
func labelProblemOK(s string) string {
	msg, _ := labelProblem(s)
	return msg
}

// domainProblem checks [mesh] domain, already lower-cased and without a
// trailing dot: dot-separated DNS labels.
func domainProblem(s string) (msg, hint string) {
	if len(s) > MaxDomainLen {
		return fmt.Sprintf("is %d characters long, more than %d", len(s), MaxDomainLen), "names under it must fit in 253 characters: use a shorter domain"
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return fmt.Sprintf("%q has an empty label", s), domainHint
		}
		if msg, _ := labelProblem(label); msg != "" {
			return fmt.Sprintf("%q is not a DNS name: label %q is not a DNS label", s, label),
				"use labels of up to 63 letters, digits and '-', starting and ending with a letter or digit, e.g. \"mesh.internal\""
		}
	}
	if s == "arpa" || strings.HasSuffix(s, ".arpa") {
		return fmt.Sprintf("%q is under .arpa, which holds the reverse zones", s), domainHint
	}
	return "", ""
}

// whereLine describes a line for cross references: " at line 5", or "".
func whereLine(line int) string {
	if line > 0 {
		return fmt.Sprintf(" at line %d", line)
	}
	return ""
}

// nodeNames returns the names of the mesh's nodes, for suggestions.
func nodeNames(m *Mesh) []string {
	names := make([]string, len(m.Nodes))
	for i, n := range m.Nodes {
		names[i] = n.Name
	}
	return names
}
