package tunnel

import (
	"net/netip"
	"sync/atomic"

	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/packet"
	"github.com/overlay-node/overlay-node/policy"
)

// The firewall: segmentation on the packet path.
//
// With rules loaded, every packet crosses a conntrack.Table once: on the
// inside pipeline after the route lookup and before sealing (direction
// Out), on the outside pipeline after the source check and before the TUN
// write (direction In). The table asks the policy only about a packet that
// may open a flow; the rest of a flow and its replies pass on one lookup.
// Inbound denials are dropped and counted as DropPolicy, never answered
// across the mesh: the remote sender may be a stock WireGuard peer that
// enforces nothing, and an answer would tell it what is there. An outbound
// denial, with Reject set, is answered to the local sender at once through
// the TUN (reject.go), so that its connect() fails instead of timing out.
//
// The firewall in force is part of the peer set, so that a reload swaps
// the peers and the rules in one store, and the packet path finds both
// with the one atomic load it already makes. Without rules the peer set
// holds none, and the path costs one nil check.

// Firewall is the engine's segmentation setting.
type Firewall struct {
	// Policy decides new flows. Nil means no rules: every packet passes
	// and no firewall is on the path.
	Policy *policy.Policy
	// Reject answers a denied outbound packet to its local sender: a TCP
	// RST for TCP, ICMP administratively prohibited for the rest. Without
	// it a denied packet is dropped silently.
	Reject bool
}

// firewall is the Firewall in force: immutable, replaced whole by a reload.
type firewall struct {
	table  *conntrack.Table
	policy *policy.Policy
	reject bool
	flows  []*atomic.Uint64 // per rule, in file order: the flows it admitted
}

// admitter puts new flows to a policy.
type admitter struct{ p *policy.Policy }

// Admit implements conntrack.Admitter: the policy is the same in both
// directions, from the packet's source to its destination.
func (a admitter) Admit(p packet.Packet, _ conntrack.Direction) (int, bool) {
	v := a.p.Decide(p.Src, p.Dst, p.Proto, p.DstPort)
	return v.Rule, v.Allow
}

// check reports whether packet h, held in b and seen in direction dir at
// monotonic time now, passes, and counts the flow it may open. run is the
// calling goroutine's memory of the batch so far: a packet of the flow
// the batch last passed as established, with nothing in it that changes
// the flow's state, passes without the table. A super-packet's segments
// and a GRO train are runs of one flow, so the table sees one packet of
// each run instead of every one.
func (f *firewall) check(run *flowRun, h *packet.Packet, b []byte, dir conntrack.Direction, now int64) bool {
	if run.valid && run.tuple == tupleOf(h) && plainSegment(h) {
		return true
	}
	v, rule := f.table.Check(h, b, dir, now)
	if v == conntrack.PassNew && rule >= 0 && rule < len(f.flows) {
		f.flows[rule].Add(1)
	}
	run.valid = v == conntrack.PassEstablished && plainSegment(h)
	run.tuple = tupleOf(h)
	return v.Pass()
}

// flowRun is what check remembers between the packets of one batch. The
// packet paths reset it at the start of every batch, so the table still
// sees every flow at least once a batch: idle timers are refreshed, and a
// flow that a reload's rules deny is cut at its next batch.
type flowRun struct {
	valid bool      // tuple passed as an established flow in this batch
	tuple flowTuple // the last packet's flow
}

// flowTuple is a packet's flow in one direction.
type flowTuple struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
}

func tupleOf(h *packet.Packet) flowTuple {
	return flowTuple{h.Src, h.Dst, h.Proto, h.SrcPort, h.DstPort}
}

// plainSegment reports whether h is a packet whose verdict is its flow's:
// ports but no fragmenting, and for TCP no flag that opens or closes.
func plainSegment(h *packet.Packet) bool {
	const stateFlags = packet.TCPFlagSYN | packet.TCPFlagFIN | packet.TCPFlagRST
	return h.HasPorts && !h.IsFragment() && (h.Proto != packet.ProtoTCP || h.TCPFlags&stateFlags == 0)
}

// buildFirewall returns the firewall in force for fw, creating the
// connection table at the first rules and carrying each rule's count over
// by name. Callers hold d.reconfigure.
func (d *Device) buildFirewall(fw Firewall) *firewall {
	if fw.Policy == nil {
		d.ruleFlows = nil
		return nil
	}
	a := admitter{fw.Policy}
	t := d.conntrack.Load()
	if t == nil {
		t = conntrack.New(d.conntrackMax, a)
		d.conntrack.Store(t)
	} else {
		t.SetAdmitter(a)
	}
	f := &firewall{table: t, policy: fw.Policy, reject: fw.Reject,
		flows: make([]*atomic.Uint64, fw.Policy.Rules())}
	counts := make(map[string]*atomic.Uint64, len(f.flows))
	for i := range f.flows {
		name := fw.Policy.Rule(i).Name
		c := d.ruleFlows[name]
		if c == nil {
			c = new(atomic.Uint64)
		}
		f.flows[i], counts[name] = c, c
	}
	d.ruleFlows = counts
	return f
}

// FirewallStats is a point-in-time view of the firewall.
type FirewallStats struct {
	// Enabled reports whether rules are loaded; without them the other
	// fields are zero but for Conntrack, which keeps the counts of rules
	// loaded before.
	Enabled bool
	Reject  bool
	// PolicyHash is policy.Policy.Hash of the rules in force.
	PolicyHash string
	// Rules are the rules in force, in file order.
	Rules []RuleStats
	// Conntrack is the connection table's; zero if rules were never loaded.
	Conntrack conntrack.Stats
}

// RuleStats is one rule and the flows it admitted since it was first loaded.
type RuleStats struct {
	Name  string
	Pos   string // file:line
	Flows uint64
}

// Denied returns the packets the firewall denied in direction dir.
func (s FirewallStats) Denied(dir conntrack.Direction) uint64 { return s.Conntrack.DeniedTotal(dir) }

func (d *Device) firewallStats(f *firewall) FirewallStats {
	var st FirewallStats
	if t := d.conntrack.Load(); t != nil {
		st.Conntrack = t.Stats()
	}
	if f == nil {
		return st
	}
	st.Enabled, st.Reject, st.PolicyHash = true, f.reject, f.policy.Hash()
	st.Rules = make([]RuleStats, len(f.flows))
	for i, c := range f.flows {
		r := f.policy.Rule(i)
		st.Rules[i] = RuleStats{Name: r.Name, Pos: r.Pos, Flows: c.Load()}
	}
	return st
}

// Policy returns the rules in force; nil when there are none.
func (d *Device) Policy() *policy.Policy {
	if f := d.peers.Load().fw; f != nil {
		return f.policy
	}
	return nil
}
