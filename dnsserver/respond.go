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
	q, reply, done := s.respondLocal(raw, tcp, nil)
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
// then q is for respondForward. Over UDP, with buf (maxUDPSize bytes),
// a reply kept in the zone's reply cache is written into buf, with no
// allocation; buf is the caller's, and so is the reply until buf is used
// again. Any other query takes the slow path, miekg/dns, which fills the
// cache.
func (s *Server) respondLocal(raw []byte, tcp bool, buf []byte) (q query, reply []byte, done bool) {
	if len(raw) < headerLen || raw[2]&0x80 != 0 { // QR set: a response
		s.stats.Malformed.Add(1)
		return q, nil, true
	}
	sv := s.zone.Load()
	h := s.cfg.Health
	var key []byte   // where the slow path keeps its reply, if it may
	var wq wireQuery // holds key, on the stack
	if buf != nil && !tcp {
		if reply, key, h = s.respondCached(sv, raw, buf, &wq); reply != nil {
			return q, reply, true
		}
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
		q.size = udpLimit(q.opt.UDPSize())
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
	} else if r, ok := answer(sv.zone, question.Name, question.Qtype, h); ok {
		m = new(dns.Msg).SetRcode(req, r.Rcode)
		m.Authoritative = true
		m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, r.Extra
	} else {
		return q, nil, false
	}
	reply = s.pack(m, q.size, q.opt)
	if key != nil && !m.Compress {
		sv.cache.put(key, reply)
	}
	s.stats.ZoneLatency.observe(time.Since(start))
	return q, reply, true
}

// respondCached answers raw, read into q, with the reply kept in sv's
// cache, written into buf. When it has none it returns nil, and for a
// query the cache may hold the key to keep the slow path's reply under,
// and the Health to build that reply with: the record the key holds.
// Otherwise h is the server's Health.
func (s *Server) respondCached(sv *served, raw, buf []byte, q *wireQuery) (reply, key []byte, h dnszone.Health) {
	start := time.Now()
	h = s.cfg.Health
	if sv.zone == nil || !q.parse(raw) {
		return nil, nil, h
	}
	up, ok := sv.zone.Up(q.name(), q.qtype, h)
	if !ok {
		return nil, nil, h
	}
	key = q.cacheKey(up)
	size := minUDPSize
	if q.edns {
		size = udpLimit(q.udpSize)
	}
	kept := sv.cache.get(key)
	if kept == nil || len(kept) > size {
		return nil, key, up
	}
	reply = fromCache(buf, kept, raw, q)
	// As the slow path counts; a kept reply is never truncated.
	s.stats.countType(q.qtype)
	s.stats.countRcode(int(reply[3] & 0xF))
	s.stats.ZoneLatency.observe(time.Since(start))
	return reply, nil, h
}

// udpLimit is the size limit of a UDP reply to a query with EDNS0 that
// asks for size.
func udpLimit(size uint16) int { return min(max(int(size), minUDPSize), maxUDPSize) }

// respondForward answers q, a name outside the zone, from the upstreams.
func (s *Server) respondForward(ctx context.Context, q query) []byte {
	start := time.Now()
	reply := s.pack(s.forward(ctx, q.req), q.size, q.opt)
	s.stats.ForwardLatency.observe(time.Since(start))
	return reply
}

// answer answers from z, with h telling which instances to hand out; ok
// is false for a name outside z, or when there is no zone.
func answer(z *dnszone.Zone, name string, qtype uint16, h dnszone.Health) (r dnszone.Result, ok bool) {
	if z == nil {
		return r, false
	}
	return z.Answer(name, qtype, h)
}

// pack finishes a reply: EDNS0 when the query had it, truncation to size,
// compression. It counts the reply's rcode. m.Compress is false after it
// when the reply fit its size uncompressed.
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
