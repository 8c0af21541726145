//go:build netbench

package bench_test

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// Metric keys: a round's sample maps each to one value.
const (
	mTCP1         = "tcp1"           // Gbit/s, one TCP stream
	mTCP1Retx     = "tcp1_retx"      // segments the single stream retransmitted
	mTCP4         = "tcp4"           // Gbit/s, four TCP streams
	mUDPkpps      = "udp_kpps"       // thousand 200-byte datagrams received per second
	mUDPLoss      = "udp_loss"       // percent of those datagrams lost
	mRawRTT       = "raw_rtt"        // µs, ping over the bare veth
	mAddedRTT     = "added_rtt"      // µs, ping through the tunnel minus mRawRTT
	mCPUPerGbit   = "cpu_gbit"       // CPU seconds of both daemons per Gbit received
	mRSS          = "rss"            // MiB per daemon, after the load
	mUnderlay     = "underlay_tx"    // bytes per datagram the sender put on the veth
	mTUNRead      = "tun_read"       // bytes per packet the sending daemon read from its TUN
	mTUNWrite     = "tun_write"      // bytes per packet the receiving daemon wrote to its TUN
	mUp1          = "up_1"           // s, start to first ping with one peer
	mUpN          = "up_n"           // s, start to first ping with the big mesh
	mRSS1         = "rss_1"          // MiB, idle, one peer
	mRSSN         = "rss_n"          // MiB, idle, the big mesh
	mRSSPerPeer   = "rss_peer"       // KiB per idle peer
	mTCP1Flood    = "tcp1_flood"     // Gbit/s, one TCP stream during a handshake flood
	mFloodKept    = "flood_kept"     // mTCP1Flood over the same round's mTCP1
	mTCP1Policy   = "tcp1_policy"    // Gbit/s, one TCP stream through 100 rules and 10,000 tracked flows
	mPolicyKept   = "policy_kept"    // mTCP1Policy over the same round's mTCP1
	mDNSQPS       = "dns_qps"        // DNS queries to the client's own node answered per second, as fast as it answers
	mDNSP99       = "dns_p99"        // ms, 99th percentile latency of those
	mDNSPacedQPS  = "dns_paced_qps"  // answered per second with dnsTargetRate offered
	mDNSPacedP50  = "dns_paced_p50"  // ms, median latency at that rate, from each query's scheduled time
	mDNSPacedP99  = "dns_paced_p99"  // ms, 99th percentile of it
	mDNSPacedLate = "dns_paced_late" // ms, 99th percentile of how late the load sent, which that latency includes
	mDNSPeerQPS   = "dns_peer_qps"   // as mDNSQPS, to the other node, through the tunnel
	mDNSPeerP99   = "dns_peer_p99"   // ms
)

// A sample is one implementation's figures from one round, by metric key.
type sample map[string]float64

// A target is what overlay-node must reach on one metric, against
// wireguard-go: the other columns are for comparison.
type target struct {
	text string
	// met reports whether the medians a (overlay-node) and b (wireguard-go)
	// reach it; nil for an informational row.
	met func(a, b float64) bool
}

// baseline is the index in impls of the implementation targets are set
// against.
const baseline = 1

func ratioAtLeast(x float64) target {
	return target{fmt.Sprintf("≥ %gx", x), func(a, b float64) bool { return a/b >= x }}
}

func ratioAtMost(x float64) target {
	return target{fmt.Sprintf("≤ %gx", x), func(a, b float64) bool { return a/b <= x }}
}

func atLeast(x float64, unit string) target {
	return target{fmt.Sprintf("≥ %g %s", x, unit), func(a, _ float64) bool { return a >= x }}
}

func atMost(x float64, unit string) target {
	return target{fmt.Sprintf("≤ %g %s", x, unit), func(a, _ float64) bool { return a <= x }}
}

// keptUnderFlood: overlay-node keeps at least 80% of its unflooded
// throughput under the flood, and more of it than wireguard-go keeps.
var keptUnderFlood = target{"≥ 0.8 and above wireguard-go's", func(a, b float64) bool { return a >= 0.8 && a > b }}

var lowerThanB = target{"lower (< 1x)", func(a, b float64) bool { return a < b }}

// A metric is one row of a table.
type metric struct {
	key, label string
	decimals   int
	target     target
	// twoWay marks a row only overlay-node and wireguard-go are measured on.
	twoWay bool
	// ownOnly marks a row only overlay-node is measured on; its target
	// does not look at the baseline.
	ownOnly bool
	// worstRound makes the row's ratios the lowest of the rounds' own
	// ratios (each round's overlay-node figure over the same round's other
	// one) rather than the ratio of the medians, and its target apply to
	// that lowest ratio.
	worstRound bool
}

// mainRows is the comparison table, in order.
func mainRows(peers int) []metric {
	n := fmt.Sprintf("%d-node mesh", peers)
	return []metric{
		{key: mTCP1, label: "TCP, 1 stream (Gbit/s)", decimals: 2, target: ratioAtLeast(1.5)},
		{key: mTCP1, label: "TCP, 1 stream, lowest ratio of a round", decimals: 2, target: ratioAtLeast(1.5), worstRound: true},
		{key: mTCP1Retx, label: "TCP, 1 stream, retransmits", decimals: 0},
		{key: mTCP1Flood, label: "TCP, 1 stream, under a handshake flood (Gbit/s)", decimals: 2, twoWay: true},
		{key: mFloodKept, label: "TCP, 1 stream, share kept under the flood", decimals: 2, target: keptUnderFlood, twoWay: true},
		{key: mTCP1Policy, label: fmt.Sprintf("TCP, 1 stream, %d rules + %d tracked flows (Gbit/s)", policyRules, policyFlows), decimals: 2, ownOnly: true},
		{key: mPolicyKept, label: "TCP, 1 stream, share kept with those rules and flows", decimals: 3, target: atLeast(0.95, "(cost ≤ 5%)"), ownOnly: true},
		{key: mTCP4, label: "TCP, 4 streams (Gbit/s)", decimals: 2, target: ratioAtLeast(1.5)},
		{key: mUDPkpps, label: "UDP 200 B, received (kpps)", decimals: 0, target: ratioAtLeast(1.5)},
		{key: mUDPLoss, label: "UDP 200 B, lost (%)", decimals: 1},
		{key: mDNSQPS, label: "DNS from the node's host, saturated: answered queries per second", decimals: 0, target: atLeast(dnsTargetRate, "/s"), ownOnly: true},
		{key: mDNSP99, label: "DNS from the node's host, saturated: latency p99 (ms)", decimals: 3, ownOnly: true},
		{key: mDNSPacedQPS, label: fmt.Sprintf("DNS from the node's host, %.0f/s offered: answered per second", dnsTargetRate), decimals: 0, ownOnly: true},
		{key: mDNSPacedP50, label: fmt.Sprintf("DNS from the node's host, %.0f/s offered: latency p50 (ms)", dnsTargetRate), decimals: 3, ownOnly: true},
		{key: mDNSPacedP99, label: fmt.Sprintf("DNS from the node's host, %.0f/s offered: latency p99 (ms)", dnsTargetRate), decimals: 3, target: atMost(2, "ms"), ownOnly: true},
		{key: mDNSPacedLate, label: fmt.Sprintf("DNS from the node's host, %.0f/s offered: the load's own send lateness p99 (ms)", dnsTargetRate), decimals: 3, ownOnly: true},
		{key: mDNSPeerQPS, label: "DNS to the peer through the tunnel, saturated: answered queries per second", decimals: 0, ownOnly: true},
		{key: mDNSPeerP99, label: "DNS to the peer through the tunnel, saturated: latency p99 (ms)", decimals: 3, ownOnly: true},
		{key: mAddedRTT, label: "RTT added by the tunnel (µs)", decimals: 0, target: ratioAtMost(0.5)},
		{key: mRawRTT, label: "RTT of the bare veth (µs)", decimals: 0},
		{key: mCPUPerGbit, label: "CPU of both daemons per Gbit, 1 stream (s)", decimals: 3, target: lowerThanB},
		{key: mRSS, label: "RSS per daemon after the load (MiB)", decimals: 1},
		{key: mUp1, label: "start to first ping, 1 peer (s)", decimals: 3, twoWay: true},
		{key: mUpN, label: "start to first ping, " + n + " (s)", decimals: 3, target: atMost(1, "s"), twoWay: true},
		{key: mRSS1, label: "RSS idle, 1 peer (MiB)", decimals: 1, twoWay: true},
		{key: mRSSN, label: "RSS idle, " + n + " (MiB)", decimals: 1, twoWay: true},
		{key: mRSSPerPeer, label: "RSS per idle peer (KiB)", decimals: 2, target: atMost(2, "KiB"), twoWay: true},
	}
}

// offloadRows show whether the kernel offloads were in use during the
// single-stream run: a kernel counts a GSO or GRO super-packet once, so an
// average above the MTU means batches moved as one.
var offloadRows = []metric{
	{key: mUnderlay, label: "UDP datagram on the veth, sender (bytes)"},
	{key: mTUNRead, label: "packet read from the TUN, sender (bytes)"},
	{key: mTUNWrite, label: "packet written to the TUN, receiver (bytes)"},
}

// results collects every implementation's values per metric, in the order
// the rounds produced them. It is used from the test goroutine only.
type results struct {
	values [len(impls)]map[string][]float64
	// rounds holds each side-by-side round's samples, by implementation,
	// for the per-round ratios; a missing sample is nil.
	rounds [][len(impls)]sample
	notes  []string // what went wrong or looks odd, for the report
	// runs counts the measurement subtests that ran, so that a run that -run
	// narrowed to some of them is not mistaken for a complete one.
	runs int
}

func newResults() *results {
	r := &results{}
	for i := range r.values {
		r.values[i] = make(map[string][]float64)
	}
	return r
}

// add records s as one round of implementation i. NaN values (a measurement
// that failed) are left out.
func (r *results) add(i int, s sample) {
	for k, v := range s {
		if !math.IsNaN(v) {
			r.values[i][k] = append(r.values[i][k], v)
		}
	}
}

// addRound records s as implementation i's sample of side-by-side round
// (from 1), for the medians and the per-round ratios. A second sample for
// the same round and implementation adds its metrics to the first.
func (r *results) addRound(round, i int, s sample) {
	r.add(i, s)
	for len(r.rounds) < round {
		r.rounds = append(r.rounds, [len(impls)]sample{})
	}
	if r.rounds[round-1][i] == nil {
		r.rounds[round-1][i] = sample{}
	}
	maps.Copy(r.rounds[round-1][i], s)
}

// roundSample returns implementation i's sample of round (from 1), nil if
// there is none.
func (r *results) roundSample(round, i int) sample {
	if round > len(r.rounds) {
		return nil
	}
	return r.rounds[round-1][i]
}

// worstRatio returns the lowest, over the rounds that measured key for both,
// of implementation 0's value over implementation j's, and whether there was
// any such round.
func (r *results) worstRatio(key string, j int) (float64, bool) {
	worst, ok := math.Inf(1), false
	for _, rs := range r.rounds {
		a, okA := rs[0][key]
		b, okB := rs[j][key]
		if okA && okB && !math.IsNaN(a) && !math.IsNaN(b) && b > 0 {
			worst, ok = min(worst, a/b), true
		}
	}
	return worst, ok
}

// note records a line for the report's notes.
func (r *results) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// summary is the median and range of one metric for one implementation.
type summary struct {
	n             int
	med, min, max float64
}

// summarize returns the summary of implementation i's values for key; n is
// 0 if there are none.
func (r *results) summarize(i int, key string) summary {
	v := slices.Clone(r.values[i][key])
	if len(v) == 0 {
		return summary{med: math.NaN()}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return summary{n: len(v), med: med, min: v[0], max: v[len(v)-1]}
}

// cell formats s as "median [min–max]", or just the value if there is one.
func (s summary) cell(decimals int) string {
	switch s.n {
	case 0:
		return "n/a"
	case 1:
		return fmt.Sprintf("%.*f", decimals, s.med)
	}
	return fmt.Sprintf("%.*f [%.*f–%.*f]", decimals, s.med, decimals, s.min, decimals, s.max)
}

// header is the first row of every table: the metric, a column per
// implementation, a ratio per other implementation, and the target.
func header() []string {
	cells := []string{"metric"}
	for _, im := range impls {
		cells = append(cells, im.name)
	}
	for _, im := range impls[1:] {
		cells = append(cells, impls[0].name+" / "+im.name)
	}
	return append(cells, "target (against "+impls[baseline].name+")")
}

// row returns the cells of m's row, in the order of header.
func (r *results) row(m metric) []string {
	if m.worstRound {
		return r.worstRoundRow(m)
	}
	var sums [len(impls)]summary
	cells := []string{m.label}
	for i := range impls {
		sums[i] = r.summarize(i, m.key)
		cells = append(cells, m.cellOf(i, sums[i]))
	}
	a := sums[0]
	for j := 1; j < len(impls); j++ {
		ratio := "n/a"
		switch b := sums[j]; {
		case m.ownOnly, m.twoWay && j != baseline:
			ratio = "—"
		case a.n > 0 && b.n > 0 && b.med > 0:
			ratio = fmt.Sprintf("%.2fx", a.med/b.med)
		}
		cells = append(cells, ratio)
	}
	b := sums[baseline]
	return append(cells, m.target.verdict(a.n > 0 && (m.ownOnly || b.n > 0), a.med, b.med, ""))
}

// verdict says whether a and b, if measured, meet t; scope, if any, goes
// after the target's text.
func (t target) verdict(measured bool, a, b float64, scope string) string {
	switch {
	case t.met == nil:
		return "—"
	case !measured:
		return t.text + scope + ": not measured"
	case t.met(a, b):
		return t.text + scope + ": met"
	}
	return t.text + scope + ": **not met**"
}

// cellOf formats implementation i's summary s of m: "—" where the row does
// not measure i.
func (m metric) cellOf(i int, s summary) string {
	if (m.twoWay && i != baseline || m.ownOnly) && i != 0 {
		return "—"
	}
	return s.cell(m.decimals)
}

// worstRoundRow returns the cells of a worstRound row: no figures per
// implementation, the lowest per-round ratio against each other one, and the
// target applied to the lowest ratio against the baseline.
func (r *results) worstRoundRow(m metric) []string {
	cells := []string{m.label}
	for range impls {
		cells = append(cells, "—")
	}
	var worst [len(impls)]float64
	var ok [len(impls)]bool
	for j := 1; j < len(impls); j++ {
		worst[j], ok[j] = r.worstRatio(m.key, j)
		ratio := "n/a"
		if ok[j] {
			ratio = fmt.Sprintf("%.2fx", worst[j])
		}
		cells = append(cells, ratio)
	}
	// The target compares a/b, so (ratio, 1) puts the ratio to it.
	return append(cells, m.target.verdict(ok[baseline], worst[baseline], 1, " in every round"))
}

// offloadNotes says, per implementation, which offloads the single-stream
// run shows in use, judged by average sizes against the path MTU.
func (r *results) offloadNotes() []string {
	const wire = 1500 // the veth MTU; the TUN MTU is overlayMTU
	var out []string
	for i, im := range impls {
		on := func(key string, limit float64) string {
			s := r.summarize(i, key)
			switch {
			case s.n == 0:
				return "not measured"
			case s.med > limit:
				return fmt.Sprintf("on (%.0f B average)", s.med)
			}
			return fmt.Sprintf("**off** (%.0f B average)", s.med)
		}
		out = append(out, fmt.Sprintf("%s: UDP GSO %s; TUN TSO (reads) %s; TUN GRO (writes) %s.",
			im.name, on(mUnderlay, wire), on(mTUNRead, overlayMTU), on(mTUNWrite, overlayMTU)))
	}
	return out
}
