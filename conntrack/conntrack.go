// Package conntrack owns the firewall's state: the flows that a policy
// admitted, so that their later packets and their replies pass without
// asking the policy again, and everything else is denied.
//
// The firewall sits on a node's tunnel and sees each packet once, in one
// of two directions: Out, from this host into the tunnel before sealing,
// and In, from the tunnel after opening and the source check, before the
// TUN write. One goroutine checks Out packets and several check In packets,
// against one Table.
//
// A flow is the 5-tuple of its first packet (protocol, addresses, ports;
// an ICMP echo's identifier in place of ports) and the direction it was seen
// in. Table.Check asks the Admitter only for a packet that no flow accounts
// for and that may open one: a TCP SYN without ACK, any UDP or other
// packet, an ICMP echo request. Once admitted, the flow's packets in the
// same direction and its replies (the reversed tuple, in the other
// direction) pass while the entry lives; both are found with one lookup,
// because a flow is stored under whichever of its two orientations sorts
// first. Every packet of the flow pushes its deadline back by the protocol's
// idle timeout; a TCP FIN or RST cuts that to a short linger, and a new SYN
// after it opens the tuple afresh. A TCP packet other than an opening SYN,
// and an echo reply, never open a flow: with no entry they are denied
// without asking the admitter.
//
// Two kinds of packet carry no 5-tuple of their own. An ICMP error
// (unreachable, packet too big, time exceeded, parameter problem) quotes
// the packet it is about, which travelled the other way: it passes when the
// quoted packet belongs to a live flow, and never opens one. A non-first
// fragment has no transport header: it passes when the first fragment of
// its datagram (same addresses, protocol and fragment ID, same direction)
// passed in the last FragmentTimeout.
//
// The table is bounded. It is split into shards by a seeded hash of the
// flow, each with its own lock, its own share of the maximum and its own
// list of entries from least to most recently used: when a shard is full,
// a new flow evicts that shard's least recently used entry, and the
// eviction is counted. Expired entries are removed when a lookup finds
// them and by a sweep of a few entries every so many packets, never by a
// scan of the whole table. Storage is allocated once, in New: checking a
// packet never allocates.
//
// A reload swaps the admitter (SetAdmitter) and so starts a new
// generation. Each entry remembers the generation that admitted it; at its
// next packet an older entry is put to the new admitter again, as its
// original first packet, and removed (cut, and counted) if the new rules
// deny it.
//
// Time is the caller's: every call takes a monotonic clock reading in
// nanoseconds, so the hot path never reads the clock and tests drive a fake one.
package conntrack

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/overlay-node/overlay-node/packet"
)

// Specification constants: the idle timeouts, as Nebula's firewall has
// them by default.
const (
	TCPTimeout   = 12 * time.Minute // an idle TCP flow
	UDPTimeout   = 3 * time.Minute  // an idle UDP flow
	OtherTimeout = 10 * time.Minute // an idle flow of any other protocol, ICMP echo included
)

// Implementation constants.
const (
	DefaultMax      = 65536            // flows tracked when the configuration does not say
	ClosingLinger   = 10 * time.Second // a TCP flow's life after a FIN or RST, renewed by each packet
	FragmentTimeout = 30 * time.Second // how long a passed first fragment lets the rest of its datagram through
	MaxFragments    = 4096             // datagrams whose first fragment is remembered at once, at most as many as flows

	maxShards   = 16 // a power of two; fewer when the maximum is smaller
	sweepEvery  = 64 // packets per shard between two sweeps
	sweepBudget = 8  // slab slots each sweep looks at, per table
)

// Direction is the way a packet crosses the firewall.
type Direction uint8

const (
	Out Direction = iota // from this host into the tunnel, before sealing
	In                   // from the tunnel, after opening and the source check
)

// String returns "out" or "in", as metrics label the direction.
func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Admitter decides whether a new flow may open: it is the policy.
type Admitter interface {
	// Admit reports whether a flow whose first packet is p, seen in
	// direction dir, may open, and the index of the rule that decided
	// (the admitting rule; for a refusal, whatever the admitter reports).
	// At a re-check after a reload, p is rebuilt from the flow's first
	// packet: version, protocol, addresses, and ports with TCPFlags SYN,
	// or an echo request's type and identifier.
	//
	// Admit is called with a shard lock held, from several goroutines at
	// once. It must be safe for concurrent use, must not block and must
	// not call the Table. p is a copy: a pointer passed through an
	// interface would escape, and cost an allocation per new flow.
	Admit(p packet.Packet, dir Direction) (rule int, ok bool)
}

// Verdict is what Check decided for a packet, and why.
// The zero Verdict is no verdict.
type Verdict uint8

const (
	PassEstablished Verdict = iota + 1 // a packet of a live flow, either way
	PassNew                            // the admitter opened a flow for it
	PassRelated                        // an ICMP error about a live flow
	PassFragment                       // a non-first fragment of a datagram whose first fragment passed
	DenyNoFlow                         // an echo reply or ICMP error with no live flow
	DenyTCPNotSYN                      // a TCP packet other than a SYN, with no live flow
	DenyFragment                       // a non-first fragment whose first fragment did not pass
	DenyICMPQuote                      // an ICMP error whose quote is unreadable or not from the error's destination
	DenyPolicy                         // the admitter refused the new flow
	DenyCut                            // the flow was cut: the rules loaded since it opened deny it
	numVerdicts
)

var verdictNames = [numVerdicts]string{
	PassEstablished: "established",
	PassNew:         "new",
	PassRelated:     "related",
	PassFragment:    "fragment",
	DenyNoFlow:      "no-flow",
	DenyTCPNotSYN:   "tcp-not-syn",
	DenyFragment:    "fragment-without-first",
	DenyICMPQuote:   "icmp-bad-quote",
	DenyPolicy:      "policy",
	DenyCut:         "cut",
}

// Pass reports whether v lets the packet through.
func (v Verdict) Pass() bool { return v >= PassEstablished && v <= PassFragment }

// String returns a short lowercase name for v, such as "tcp-not-syn".
func (v Verdict) String() string {
	if v == 0 || v >= numVerdicts {
		return "invalid"
	}
	return verdictNames[v]
}

// Stats is a snapshot of a Table's counters.
type Stats struct {
	Entries           int    // flows tracked now, expired ones not yet removed included
	Fragments         int    // first fragments remembered now
	Evictions         uint64 // live flows removed to make room for a new one
	FragmentEvictions uint64 // remembered first fragments removed to make room
	Expired           uint64 // flows removed after their timeout
	Cut               uint64 // flows removed because the rules loaded since deny them
	// Denied counts denied packets by direction and verdict.
	Denied [2][numVerdicts]uint64
}

// DeniedTotal returns the packets denied in direction d, for any reason.
func (s *Stats) DeniedTotal(d Direction) uint64 {
	var n uint64
	for _, c := range s.Denied[d] {
		n += c
	}
	return n
}

// A Table tracks flows and checks packets against them. Its methods are
// safe for concurrent use.
type Table struct {
	// Immutable after New.
	shards []shard
	shift  uint // a flow's hash >> shift is its shard
	seed   seed // keeps hashes unpredictable to those who choose tuples

	// Atomic.
	gen    atomic.Pointer[generation]
	denied [2][numVerdicts]atomic.Uint64
}

// generation is one admitter and its number; a reload installs a new one.
type generation struct {
	admitter Admitter
	n        uint32
}

// shard is a lock and the part of the table it guards, padded so that two
// shards' locks never share a cache line.
type shard struct {
	mu    sync.Mutex
	flows slab   // guarded by mu
	frags slab   // guarded by mu
	ticks uint32 // guarded by mu; paces the sweep

	// Atomic: written under mu, read by Stats without it.
	entries, fragments                          atomic.Int64
	evictions, fragEvictions, expired, cutFlows atomic.Uint64

	_ [64]byte
}

// New returns a Table that tracks at most maxFlows flows (DefaultMax when
// maxFlows is not positive) and opens them as a decides. It allocates all
// the table's storage at once: about 100 bytes per flow.
func New(maxFlows int, a Admitter) *Table {
	return newSeeded(maxFlows, a, rand.Uint64())
}

func newSeeded(maxFlows int, a Admitter, seed uint64) *Table {
	if maxFlows <= 0 {
		maxFlows = DefaultMax
	}
	n := maxShards
	for n > 1 && n > maxFlows {
		n /= 2
	}
	t := &Table{shards: make([]shard, n), shift: 64, seed: newSeed(seed)}
	for m := n; m > 1; m /= 2 {
		t.shift--
	}
	for i := range t.shards {
		c := maxFlows / n
		if i < maxFlows%n {
			c++
		}
		t.shards[i].flows.init(c)
		t.shards[i].frags.init(max(min(MaxFragments, maxFlows)/n, 1))
	}
	t.gen.Store(&generation{admitter: a})
	return t
}

// SetAdmitter installs a as the admitter for new flows and starts a new
// generation: each flow admitted before is put to a at its next packet,
// and cut if a denies it. It returns the new generation's number.
func (t *Table) SetAdmitter(a Admitter) uint32 {
	for {
		old := t.gen.Load()
		g := &generation{admitter: a, n: old.n + 1}
		if t.gen.CompareAndSwap(old, g) {
			return g.n
		}
	}
}

// Stats returns the table's counters. It reads them one at a time, so
// under traffic the snapshot is not of one instant.
func (t *Table) Stats() Stats {
	var st Stats
	for i := range t.shards {
		s := &t.shards[i]
		st.Entries += int(s.entries.Load())
		st.Fragments += int(s.fragments.Load())
		st.Evictions += s.evictions.Load()
		st.FragmentEvictions += s.fragEvictions.Load()
		st.Expired += s.expired.Load()
		st.Cut += s.cutFlows.Load()
	}
	for d := range t.denied {
		for v := range t.denied[d] {
			st.Denied[d][v] = t.denied[d][v].Load()
		}
	}
	return st
}

// Check decides whether packet p, seen in direction dir at monotonic time
// now (nanoseconds), passes, and updates the flows it belongs to. b holds
// the packet p was parsed from; only an ICMP error's quote is read from it,
// and it is not retained. The returned rule is the admitter's for PassNew
// and DenyPolicy, and -1 otherwise. Check never allocates.
func (t *Table) Check(p *packet.Packet, b []byte, dir Direction, now int64) (v Verdict, rule int) {
	rule = -1
	switch {
	case p.IsNonFirstFragment():
		v = t.checkFragment(p, dir, now)
	case p.IsICMPError():
		v = t.checkICMPError(p, b, dir, now)
	default:
		v, rule = t.checkFlow(p, dir, now)
		if v.Pass() && p.MoreFragments {
			t.rememberFragment(p, dir, now)
		}
	}
	if !v.Pass() {
		t.denied[dir&1][v].Add(1)
	}
	return v, rule
}

func (t *Table) shardOf(h uint64) *shard { return &t.shards[h>>t.shift] }

// checkFlow checks a packet that carries its own flow's tuple.
func (t *Table) checkFlow(p *packet.Packet, dir Direction, now int64) (Verdict, int) {
	var k key
	flipped := k.setFlow(p, dir)
	h := t.seed.hash(&k)
	s := t.shardOf(h)
	g := t.gen.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick(now)

	if i := s.flows.find(&k, h); i >= 0 {
		e := &s.flows.entries[i]
		switch {
		case e.expires <= now:
			s.flows.remove(i)
			s.entries.Add(-1)
			s.expired.Add(1)
		case e.closing && opensTCP(p) && flipped == e.flipped:
			// A new connection on a closed flow's tuple: admit it afresh.
			s.flows.remove(i)
			s.entries.Add(-1)
		default:
			if e.gen != g.n && !s.recheck(i, g) {
				return DenyCut, -1
			}
			e.refresh(p, now)
			s.flows.touch(i)
			return PassEstablished, -1
		}
	}

	if p.Proto == packet.ProtoTCP && !opensTCP(p) {
		return DenyTCPNotSYN, -1
	}
	if p.IsICMPEcho() && !isEchoRequest(p) {
		return DenyNoFlow, -1
	}
	rule, ok := g.admitter.Admit(*p, dir)
	if !ok {
		return DenyPolicy, rule
	}
	s.makeRoom(&s.flows, &s.entries, &s.evictions, now)
	i := s.flows.insert(&k, h)
	s.entries.Add(1)
	e := &s.flows.entries[i]
	e.flipped, e.gen, e.timeout = flipped, g.n, idleTimeout(p.Proto)
	e.refresh(p, now)
	return PassNew, rule
}

// checkICMPError checks an ICMP error by the flow of the packet it quotes.
func (t *Table) checkICMPError(p *packet.Packet, b []byte, dir Direction, now int64) Verdict {
	off := p.EmbeddedOffset()
	if off <= 0 || off > p.TotalLen || p.TotalLen > len(b) {
		return DenyICMPQuote
	}
	q, err := packet.ParseEmbedded(b[off:p.TotalLen])
	// The error goes back to whoever sent the quoted packet; a quote of a
	// fragment's middle or of another error names no flow.
	if err != nil || q.Version != p.Version || q.Src != p.Dst || q.IsNonFirstFragment() || q.IsICMPError() {
		return DenyICMPQuote
	}
	// The quoted packet travelled the other way.
	var k key
	k.setFlow(&q, dir^1)
	h := t.seed.hash(&k)
	s := t.shardOf(h)
	g := t.gen.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick(now)
	i := s.flows.find(&k, h)
	if i < 0 {
		return DenyNoFlow
	}
	e := &s.flows.entries[i]
	if e.expires <= now {
		s.flows.remove(i)
		s.entries.Add(-1)
		s.expired.Add(1)
		return DenyNoFlow
	}
	if e.gen != g.n && !s.recheck(i, g) {
		return DenyCut
	}
	return PassRelated // an error is not activity: the deadline stays
}

// checkFragment checks a non-first fragment against the first fragments
// that passed.
func (t *Table) checkFragment(p *packet.Packet, dir Direction, now int64) Verdict {
	k := fragmentKey(p, dir)
	h := t.seed.hash(&k)
	s := t.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.frags.find(&k, h)
	if i < 0 {
		return DenyFragment
	}
	if s.frags.entries[i].expires <= now {
		s.frags.remove(i)
		s.fragments.Add(-1)
		return DenyFragment
	}
	return PassFragment
}

// rememberFragment records that the first fragment p passed, so that the
// rest of its datagram may follow.
func (t *Table) rememberFragment(p *packet.Packet, dir Direction, now int64) {
	k := fragmentKey(p, dir)
	h := t.seed.hash(&k)
	s := t.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.frags.find(&k, h)
	if i < 0 {
		s.makeRoom(&s.frags, &s.fragments, &s.fragEvictions, now)
		i = s.frags.insert(&k, h)
		s.fragments.Add(1)
	}
	s.frags.entries[i].expires = now + int64(FragmentTimeout)
}

// recheck puts flow i, admitted by an older generation, to generation g's
// admitter as its first packet. It reports whether the flow stays; if not,
// it removes the flow and counts it cut.
func (s *shard) recheck(i int32, g *generation) bool {
	e := &s.flows.entries[i]
	p, dir := e.firstPacket()
	if _, ok := g.admitter.Admit(p, dir); ok {
		e.gen = g.n
		return true
	}
	s.flows.remove(i)
	s.entries.Add(-1)
	s.cutFlows.Add(1)
	return false
}

// makeRoom removes the least recently used entry of sl if sl is full,
// counting it in evicted if it was still live. s.mu must be held.
func (s *shard) makeRoom(sl *slab, n *atomic.Int64, evicted *atomic.Uint64, now int64) {
	if !sl.full() {
		return
	}
	i := sl.tail
	if sl.entries[i].expires <= now {
		if sl == &s.flows {
			s.expired.Add(1)
		}
	} else {
		evicted.Add(1)
	}
	sl.remove(i)
	n.Add(-1)
}

// tick counts a packet and, every sweepEvery packets, removes the expired
// entries among the next few slab slots. s.mu must be held.
func (s *shard) tick(now int64) {
	s.ticks++
	if s.ticks%sweepEvery != 0 {
		return
	}
	if n := s.flows.sweep(now, sweepBudget); n > 0 {
		s.entries.Add(-int64(n))
		s.expired.Add(uint64(n))
	}
	if n := s.frags.sweep(now, sweepBudget); n > 0 {
		s.fragments.Add(-int64(n))
	}
}

// opensTCP reports whether p is a TCP packet that may open a flow: a SYN
// with none of ACK, FIN and RST.
func opensTCP(p *packet.Packet) bool {
	return p.Proto == packet.ProtoTCP &&
		p.TCPFlags&(packet.TCPFlagSYN|packet.TCPFlagACK|packet.TCPFlagFIN|packet.TCPFlagRST) == packet.TCPFlagSYN
}

// isEchoRequest reports whether the echo p is a request (not a reply).
func isEchoRequest(p *packet.Packet) bool { return p.ICMPType == 8 || p.ICMPType == 128 }

// idleTimeout returns how long a flow of protocol proto lives without a packet.
func idleTimeout(proto uint8) int64 {
	switch proto {
	case packet.ProtoTCP:
		return int64(TCPTimeout)
	case packet.ProtoUDP:
		return int64(UDPTimeout)
	}
	return int64(OtherTimeout)
}
