package dnsserver

import (
	"context"
	"time"

	"github.com/miekg/dns"

	"github.com/overlay-node/overlay-node/dnszone"
)

// headerLen is the length of the fixed DNS header.
const headerLen = 12

// respond answers one query in wire format, from the zone or an upstream.
// It returns the reply to send, or nil to drop the query: one too short to
// answer, or a response rather than a query (answering would let two
// servers bounce packets forever). Over UDP the reply fits the client's
// size, truncated (TC) if need be. It never panics on bad input.
func (s *Server) respond(ctx context.Context, raw []byte, tcp bool) []byte {
	q, reply, done := s.respondLocal(raw, tcp)
	if done {
		return reply
	}
	return s.respondForward(ctx, q)
}

// query is a parsed query that the zone does not answer, kept for
// respondForward.
type query struct {
	req  *dns.Msg
	size int      // the reply's size limit
	opt  *dns.OPT // the query's EDNS0 record, or nil
}

// respondLocal is the part of respond that never waits: it parses raw and
// answers from the zone. done is false when the name is outside the zone;
// then q is for respondForward.
func (s *Server) respondLocal(raw []byte, tcp bool) (q query, reply []byte, done bool) {
	if len(raw) < headerLen || raw[2]&0x80 != 0 { // QR set: a response
		s.stats.Malformed.Add(1)
		return q, nil, true
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		s.stats.Malformed.Add(1)
		return q, s.pack(formErr(raw), minUDPSize, nil), true
	}
	if req.Opcode != dns.OpcodeQuery {
		return q, s.pack(new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented), minUDPSize, nil), true
	}
	if len(req.Question) != 1 {
		s.stats.Malformed.Add(1)
		return q, s.pack(new(dns.Msg).SetRcode(req, dns.RcodeFormatError), minUDPSize, nil), true
	}
	q = query{req: req, size: minUDPSize, opt: req.IsEdns0()}
	if q.opt != nil {
		q.size = min(max(int(q.opt.UDPSize()), minUDPSize), maxUDPSize)
	}
	if tcp {
		q.size = dns.MaxMsgSize
	}
	question := req.Question[0]
	s.stats.countType(question.Qtype)

	start := time.Now()
	var m *dns.Msg
	if question.Qclass != dns.ClassINET {
		m = new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	} else if r, ok := s.answer(question.Name, question.Qtype); ok {
		m = new(dns.Msg).SetRcode(req, r.Rcode)
		m.Authoritative = true
		m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, r.Extra
	} else {
		return q, nil, false
	}
	reply = s.pack(m, q.size, q.opt)
	s.stats.ZoneLatency.observe(time.Since(start))
	return q, reply, true
}

// respondForward answers q, a name outside the zone, from the upstreams.
func (s *Server) respondForward(ctx context.Context, q query) []byte {
	start := time.Now()
	reply := s.pack(s.forward(ctx, q.req), q.size, q.opt)
	s.stats.ForwardLatency.observe(time.Since(start))
	return reply
}

// answer answers from the zone; ok is false for a name outside it, or when
// there is no zone.
func (s *Server) answer(name string, qtype uint16) (r dnszone.Result, ok bool) {
	z := s.zone.Load()
	if z == nil {
		return r, false
	}
	return z.Answer(name, qtype, s.cfg.Health)
}

// pack finishes a reply: EDNS0 when the query had it, truncation to size,
// compression. It counts the reply's rcode.
func (s *Server) pack(m *dns.Msg, size int, opt *dns.OPT) []byte {
	if opt != nil {
		m.SetEdns0(ednsSize, opt.Do())
	}
	m.Compress = true
	if size < dns.MaxMsgSize {
		m.Truncate(size)
		if m.Truncated {
			s.stats.Truncated.Add(1)
		}
	}
	out, err := m.Pack()
	if err != nil {
		// Records from an upstream that cannot be packed again.
		s.log.Debug("dns: pack reply failed", "err", err)
		m = new(dns.Msg).SetRcode(m, dns.RcodeServerFailure)
		m.Answer, m.Ns, m.Extra = nil, nil, nil
		if out, err = m.Pack(); err != nil {
			return nil
		}
	}
	s.stats.countRcode(m.Rcode)
	return out
}

// formErr is the reply to a query that does not parse: FORMERR with the
// query's ID and opcode, and nothing else.
func formErr(raw []byte) *dns.Msg {
	m := new(dns.Msg)
	m.Id = uint16(raw[0])<<8 | uint16(raw[1])
	m.Response = true
	m.Opcode = int(raw[2]>>3) & 0xF
	m.Rcode = dns.RcodeFormatError
	return m
}
