// Package dnszone builds the DNS zone of a mesh: the names of its nodes and
// services under the mesh domain, the SRV records of the services and the
// reverse names of the overlay addresses. A Zone is immutable; a reload
// builds a new one. It knows nothing of the engine or the config file:
// cmd builds its Input.
package dnszone

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Implementation constants.
const (
	// TTL of every record. It is short so that a reload or an instance
	// that stops answering reaches clients within seconds.
	TTL = 10
	// soaTTL is the TTL of the SOA and NS records; its minimum field is
	// the negative-caching TTL (RFC 2308), TTL as well.
	soaTTL = 60
)

// Input is what a zone is built from.
type Input struct {
	Domain   string    // e.g. "mesh.internal", with or without the final dot; any case
	Self     string    // the node serving the zone: the NS and the SOA's primary
	Nodes    []Node    // every node of the mesh
	Services []Service // every service
}

// Node is a node of the mesh.
type Node struct {
	Name      string       // DNS label
	Addresses []netip.Addr // overlay addresses
}

// Service is a set of nodes running the same thing on the same port.
type Service struct {
	Name     string   // DNS label
	Nodes    []string // names of the instances' nodes, all in Input.Nodes
	Port     uint16
	Protocol string // "tcp" or "udp"
}

// Health tells which nodes are reachable right now. It is asked at query
// time, from many goroutines at once.
type Health interface {
	// Reachable reports whether node answers: whether its instances of
	// services should be handed out.
	Reachable(node string) bool
}

// Zone answers queries for one mesh. It is immutable and safe for
// concurrent use.
type Zone struct {
	domain string // FQDN, lower case
	serial uint32
	soa    *dns.SOA
	glue   []dns.RR          // the A/AAAA of the NS, for the additional section
	names  map[string]*entry // lower-case FQDN to what is there
}

// entry is what one name holds. A name with no records and no instances
// is an empty non-terminal: it exists, with no data (RFC 8020). No name
// has both instances and srv: a service's name is one label below the
// domain, its SRV name three.
type entry struct {
	records   []dns.RR    // fixed records: A/AAAA of nodes, PTR, SOA and NS at the apex
	instances []*instance // a service name: A/AAAA, health-filtered
	srv       []*instance // an SRV name: SRV, health-filtered
}

// pool returns the instances an answer of type qtype at e picks from by
// reachability: the service's for A and AAAA, the SRV name's for SRV, and
// whichever e has for ANY.
func (e *entry) pool(qtype uint16) []*instance {
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		return e.instances
	case dns.TypeSRV:
		return e.srv
	case dns.TypeANY:
		if len(e.srv) > 0 {
			return e.srv
		}
		return e.instances
	}
	return nil
}

// instance is one node of a service.
type instance struct {
	node  string
	addrs []dns.RR // the node's A and AAAA records
	srv   *dns.SRV // for SRV names
}

// New builds the zone of in. It checks what it relies on: names are
// labels, services name known nodes, and no two things share a name.
func New(in Input) (*Zone, error) {
	domain := dns.CanonicalName(in.Domain)
	if _, ok := dns.IsDomainName(domain); !ok || domain == "." {
		return nil, fmt.Errorf("dnszone: %q is not a domain name", in.Domain)
	}
	z := &Zone{domain: domain, names: make(map[string]*entry)}
	get := func(name string) *entry {
		e := z.names[name]
		if e == nil {
			e = &entry{}
			z.names[name] = e
		}
		return e
	}

	nodes := make(map[string][]dns.RR) // node name to its A/AAAA records
	for _, n := range in.Nodes {
		if err := checkLabel("node", n.Name); err != nil {
			return nil, err
		}
		name := n.Name + "." + domain
		if _, dup := nodes[n.Name]; dup {
			return nil, fmt.Errorf("dnszone: node %q twice", n.Name)
		}
		var rrs []dns.RR
		for _, a := range n.Addresses {
			a = a.Unmap()
			rrs = append(rrs, addrRR(name, a))
			rev, err := dns.ReverseAddr(a.String())
			if err != nil {
				return nil, fmt.Errorf("dnszone: node %q: %w", n.Name, err)
			}
			e := get(rev)
			if len(e.records) > 0 {
				return nil, fmt.Errorf("dnszone: address %s of node %q is another node's too", a, n.Name)
			}
			e.records = append(e.records, &dns.PTR{Hdr: hdr(rev, dns.TypePTR, TTL), Ptr: name})
		}
		nodes[n.Name] = rrs
		get(name).records = rrs
	}
	if _, ok := nodes[in.Self]; !ok {
		return nil, fmt.Errorf("dnszone: self %q is not a node", in.Self)
	}

	for _, s := range in.Services {
		if err := checkLabel("service", s.Name); err != nil {
			return nil, err
		}
		if s.Protocol != "tcp" && s.Protocol != "udp" {
			return nil, fmt.Errorf("dnszone: service %q: protocol %q is not tcp or udp", s.Name, s.Protocol)
		}
		name := s.Name + "." + domain
		srvName := "_" + s.Name + "._" + s.Protocol + "." + domain
		if z.names[name] != nil || z.names[srvName] != nil {
			return nil, fmt.Errorf("dnszone: service %q: the name is taken", s.Name)
		}
		e, se := get(name), get(srvName)
		for _, n := range s.Nodes {
			rrs, ok := nodes[n]
			if !ok {
				return nil, fmt.Errorf("dnszone: service %q: no node %q", s.Name, n)
			}
			e.instances = append(e.instances, &instance{node: n, addrs: renamed(rrs, name)})
			se.srv = append(se.srv, &instance{node: n, addrs: rrs, srv: &dns.SRV{
				Hdr: hdr(srvName, dns.TypeSRV, TTL), Priority: 0, Weight: 10, Port: s.Port, Target: n + "." + domain,
			}})
		}
	}

	// Empty non-terminals: every ancestor of a name in the domain exists.
	for name := range z.names {
		if !dns.IsSubDomain(domain, name) {
			continue
		}
		for off, end := dns.NextLabel(name, 0); !end && name[off:] != domain; off, end = dns.NextLabel(name, off) {
			get(name[off:])
		}
	}

	z.serial = z.hash()
	self := in.Self + "." + domain
	z.soa = &dns.SOA{
		Hdr: hdr(domain, dns.TypeSOA, soaTTL), Ns: self, Mbox: "hostmaster." + domain,
		Serial: z.serial, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: TTL,
	}
	z.glue = nodes[in.Self]
	get(domain).records = []dns.RR{z.soa, &dns.NS{Hdr: hdr(domain, dns.TypeNS, soaTTL), Ns: self}}
	return z, nil
}

// renamed returns copies of rrs owned by name.
func renamed(rrs []dns.RR, name string) []dns.RR {
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
		out[i].Header().Name = name
	}
	return out
}

// hash is the zone's serial: a hash of its content, so that it changes
// when the content does and not otherwise.
func (z *Zone) hash() uint32 {
	var lines []string
	for name, e := range z.names {
		lines = append(lines, name)
		for _, rr := range e.records {
			lines = append(lines, rr.String())
		}
		for _, in := range e.instances {
			lines = append(lines, name+" instance "+in.node)
		}
		for _, in := range e.srv {
			lines = append(lines, in.srv.String())
		}
	}
	slices.Sort(lines)
	h := fnv.New32a()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return h.Sum32()
}

func checkLabel(what, s string) error {
	if s == "" || len(s) > 63 || strings.ContainsAny(s, ". \\") {
		return fmt.Errorf("dnszone: %s %q is not a DNS label", what, s)
	}
	return nil
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func addrRR(name string, a netip.Addr) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: hdr(name, dns.TypeA, TTL), A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: hdr(name, dns.TypeAAAA, TTL), AAAA: a.AsSlice()}
}

// Domain returns the zone's domain as a lower-case FQDN.
func (z *Zone) Domain() string { return z.domain }

// Serial returns the SOA serial: a hash of the zone's content.
func (z *Zone) Serial() uint32 { return z.serial }
