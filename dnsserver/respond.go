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
	if len(raw) < headerLen || raw[2]&0x80 != 0 { // QR set: a response
		s.stats.Malformed.Add(1)
		return nil
	}
	req := new(dns.Msg)
	if err := req.Unpack(raw); err != nil {
		s.stats.Malformed.Add(1)
		return s.pack(formErr(raw), minUDPSize, nil)
	}
	if req.Opcode != dns.OpcodeQuery {
		return s.pack(new(dns.Msg).SetRcode(req, dns.RcodeNotImplemented), minUDPSize, nil)
	}
	if len(req.Question) != 1 {
		s.stats.Malformed.Add(1)
		return s.pack(new(dns.Msg).SetRcode(req, dns.RcodeFormatError), minUDPSize, nil)
	}
	size := minUDPSize
	opt := req.IsEdns0()
	if opt != nil {
		size = min(max(int(opt.UDPSize()), minUDPSize), maxUDPSize)
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	q := req.Question[0]
	s.stats.countType(q.Qtype)

	start := time.Now()
	latency := &s.stats.ZoneLatency
	var m *dns.Msg
	switch {
	case q.Qclass != dns.ClassINET:
		m = new(dns.Msg).SetRcode(req, dns.RcodeRefused)
	default:
		if r, ok := s.answer(q.Name, q.Qtype); ok {
			m = new(dns.Msg).SetRcode(req, r.Rcode)
			m.Authoritative = true
			m.Answer, m.Ns, m.Extra = r.Answer, r.Ns, r.Extra
		} else {
			m = s.forward(ctx, req)
			latency = &s.stats.ForwardLatency
		}
	}
	out := s.pack(m, size, opt)
	latency.observe(time.Since(start))
	return out
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
