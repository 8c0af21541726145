package dnsserver

import (
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// CountedTypes are the query types counted on their own, in the order of
// Stats.Types; every other type is counted in the last slot.
var CountedTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeSOA, dns.TypeNS, dns.TypeTXT, dns.TypeMX, dns.TypeANY}

// Stats are the server's counters. They are updated atomically and may be
// read at any time.
type Stats struct {
	Rcodes          [16]atomic.Uint64 // replies by rcode (4-bit rcodes; extended ones are not sent)
	Types           [10]atomic.Uint64 // queries by type: CountedTypes, then all others
	Forwards        atomic.Uint64     // queries sent on to an upstream
	ForwardFailures atomic.Uint64     // forwards answered SERVFAIL: every upstream failed, or too many in flight
	Malformed       atomic.Uint64     // queries that did not parse, or were responses: answered FORMERR or dropped
	Truncated       atomic.Uint64     // UDP replies cut to the client's size, with TC set
	Dropped         atomic.Uint64     // queries not answered for lack of room: UDP forwards or TCP connections over their bound
	ZoneLatency     Latency           // time to answer a query from the zone, from parse to packed reply
	ForwardLatency  Latency           // time to answer a forwarded query, upstream round trips included
}

// LatencyBounds are the upper bounds of the Latency buckets.
var LatencyBounds = [...]time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
}

// Latency is a histogram of answer times.
type Latency struct {
	Counts [len(LatencyBounds) + 1]atomic.Uint64 // per bucket, not cumulative; the last counts those over every bound
	Sum    atomic.Int64                          // nanoseconds
}

func (l *Latency) observe(d time.Duration) {
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	l.Counts[i].Add(1)
	l.Sum.Add(int64(d))
}

// TypeName names slot i of Stats.Types: "A", …, or "other".
func TypeName(i int) string {
	if i < len(CountedTypes) {
		return dns.TypeToString[CountedTypes[i]]
	}
	return "other"
}

func (s *Stats) countType(t uint16) {
	for i, c := range CountedTypes {
		if c == t {
			s.Types[i].Add(1)
			return
		}
	}
	s.Types[len(CountedTypes)].Add(1)
}

func (s *Stats) countRcode(rcode int) {
	if rcode >= 0 && rcode < len(s.Rcodes) {
		s.Rcodes[rcode].Add(1)
	}
}
