package dnsserver

import (
	"context"
	"net/netip"

	"github.com/miekg/dns"
)

// forward asks the upstreams, in order, for a name outside the zone and
// returns the first usable reply for req. With no upstream it refuses;
// with every upstream failing, or MaxForwards already in flight, it
// answers SERVFAIL.
func (s *Server) forward(ctx context.Context, req *dns.Msg) *dns.Msg {
	ups := *s.upstreams.Load()
	if len(ups) == 0 {
		return new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	}
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	default:
		s.stats.ForwardFailures.Add(1)
		return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	}
	s.stats.Forwards.Add(1)

	q := req.Question[0]
	fw := new(dns.Msg)
	fw.SetQuestion(q.Name, q.Qtype)
	fw.Question[0].Qclass = q.Qclass
	fw.RecursionDesired = req.RecursionDesired
	fw.CheckingDisabled = req.CheckingDisabled
	do := false
	if opt := req.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	fw.SetEdns0(ednsSize, do)

	for _, up := range ups {
		if r := exchange(ctx, fw, up); r != nil {
			r.Id = req.Id
			r.Extra = withoutOPT(r.Extra) // pack sets ours
			return r
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.stats.ForwardFailures.Add(1)
	return new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
}

// exchange asks one upstream over UDP, then over TCP if the reply was
// truncated. It returns nil when the upstream failed or answered SERVFAIL.
func exchange(ctx context.Context, m *dns.Msg, up netip.AddrPort) *dns.Msg {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	c := &dns.Client{Net: "udp", UDPSize: ednsSize, Timeout: ForwardTimeout}
	r, _, err := c.ExchangeContext(ctx, m, up.String())
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, m, up.String())
	}
	if err != nil || r.Rcode == dns.RcodeServerFailure || len(r.Question) != 1 || r.Question[0] != m.Question[0] {
		return nil
	}
	return r
}

// withoutOPT returns rrs without their OPT record.
func withoutOPT(rrs []dns.RR) []dns.RR {
	out := rrs[:0]
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}
