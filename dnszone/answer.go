package dnszone

import (
	"strings"

	"github.com/miekg/dns"
)

// Result is the zone's answer to one question. Its records are shared with
// the zone and with other answers: do not change them.
type Result struct {
	Rcode  int      // dns.RcodeSuccess or dns.RcodeNameError
	Answer []dns.RR // empty for NODATA and NXDOMAIN
	Ns     []dns.RR // the SOA for NODATA and NXDOMAIN (RFC 2308)
	Extra  []dns.RR // the addresses of SRV targets and of the NS
}

// Contains reports whether the zone is the authority for name: a name under
// the domain, or the reverse name of an overlay address.
func (z *Zone) Contains(name string) bool {
	name = strings.ToLower(name)
	return z.names[name] != nil || dns.IsSubDomain(z.domain, name)
}

// Answer answers a query for name (an FQDN, any case) and type qtype of class
// IN. h says which instances of services to leave out; nil means all are
// reachable. ok is false when the zone is not the authority for name, for
// names to forward.
func (z *Zone) Answer(name string, qtype uint16, h Health) (r Result, ok bool) {
	name = strings.ToLower(name)
	e := z.names[name]
	if e == nil {
		if !dns.IsSubDomain(z.domain, name) {
			return Result{}, false
		}
		return Result{Rcode: dns.RcodeNameError, Ns: []dns.RR{z.soa}}, true
	}
	for _, rr := range e.records {
		if match(rr, qtype) {
			r.Answer = append(r.Answer, rr)
			if qtype == dns.TypeNS {
				r.Extra = append(r.Extra, z.glue...) // a copy: the server appends its OPT
			}
		}
	}
	for _, in := range reachable(e.pool(qtype), h) {
		if in.srv != nil {
			r.Answer = append(r.Answer, in.srv)
			r.Extra = append(r.Extra, in.addrs...)
			continue
		}
		for _, rr := range in.addrs {
			if match(rr, qtype) {
				r.Answer = append(r.Answer, rr)
			}
		}
	}
	if len(r.Answer) == 0 {
		r.Ns = []dns.RR{z.soa} // NODATA, also for empty non-terminals
	}
	return r, true
}

// match reports whether rr answers a query of type qtype.
func match(rr dns.RR, qtype uint16) bool {
	return qtype == dns.TypeANY || rr.Header().Rrtype == qtype
}

// reachable returns the instances on reachable nodes, or all of them when
// none is reachable: an answer that may work beats none.
func reachable(all []*instance, h Health) []*instance {
	if h == nil {
		return all
	}
	var up []*instance
	for _, in := range all {
		if h.Reachable(in.node) {
			up = append(up, in)
		}
	}
	if len(up) == 0 {
		return all
	}
	return up
}
