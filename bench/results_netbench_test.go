//go:build netbench

package bench_test

import (
	"fmt"
	"math"
	"slices"
)

// Metric keys: a round's sample maps each to one value.
const (
	mTCP1       = "tcp1"        // Gbit/s, one TCP stream
	mTCP4       = "tcp4"        // Gbit/s, four TCP streams
	mUDPkpps    = "udp_kpps"    // thousand 200-byte datagrams received per second
	mUDPLoss    = "udp_loss"    // percent of those datagrams lost
	mRawRTT     = "raw_rtt"     // µs, ping over the bare veth
	mAddedRTT   = "added_rtt"   // µs, ping through the tunnel minus mRawRTT
	mCPUPerGbit = "cpu_gbit"    // CPU seconds of both daemons per Gbit received
	mRSS        = "rss"         // MiB per daemon, after the load
	mUnderlay   = "underlay_tx" // bytes per datagram the sender put on the veth
	mTUNRead    = "tun_read"    // bytes per packet the sending daemon read from its TUN
	mTUNWrite   = "tun_write"   // bytes per packet the receiving daemon wrote to its TUN
	mUp1        = "up_1"        // s, start to first ping with one peer
	mUpN        = "up_n"        // s, start to first ping with the big mesh
	mRSS1       = "rss_1"       // MiB, idle, one peer
	mRSSN       = "rss_n"       // MiB, idle, the big mesh
	mRSSPerPeer = "rss_peer"    // KiB per idle peer
)

// A sample is one implementation's figures from one round, by metric key.
type sample map[string]float64

// A target is what overlay-node must reach on one metric.
type target struct {
	text string
	// met reports whether the medians a (overlay-node) and b (wireguard-go)
	// reach it; nil for an informational row.
	met func(a, b float64) bool
}

func ratioAtLeast(x float64) target {
	return target{fmt.Sprintf("≥ %gx", x), func(a, b float64) bool { return a/b >= x }}
}

func ratioAtMost(x float64) target {
	return target{fmt.Sprintf("≤ %gx", x), func(a, b float64) bool { return a/b <= x }}
}

func atMost(x float64, unit string) target {
	return target{fmt.Sprintf("≤ %g %s", x, unit), func(a, _ float64) bool { return a <= x }}
}

var lowerThanB = target{"lower (< 1x)", func(a, b float64) bool { return a < b }}

// A metric is one row of a table.
type metric struct {
	key, label string
	decimals   int
	target     target
}

// mainRows is the comparison table, in order.
func mainRows(peers int) []metric {
	n := fmt.Sprintf("%d-node mesh", peers)
	return []metric{
		{mTCP1, "TCP, 1 stream (Gbit/s)", 2, ratioAtLeast(1.5)},
		{mTCP4, "TCP, 4 streams (Gbit/s)", 2, ratioAtLeast(1.5)},
		{mUDPkpps, "UDP 200 B, received (kpps)", 0, ratioAtLeast(1.5)},
		{mUDPLoss, "UDP 200 B, lost (%)", 1, target{}},
		{mAddedRTT, "RTT added by the tunnel (µs)", 0, ratioAtMost(0.5)},
		{mRawRTT, "RTT of the bare veth (µs)", 0, target{}},
		{mCPUPerGbit, "CPU of both daemons per Gbit, 1 stream (s)", 3, lowerThanB},
		{mRSS, "RSS per daemon after the load (MiB)", 1, target{}},
		{mUp1, "start to first ping, 1 peer (s)", 3, target{}},
		{mUpN, "start to first ping, " + n + " (s)", 3, atMost(1, "s")},
		{mRSS1, "RSS idle, 1 peer (MiB)", 1, target{}},
		{mRSSN, "RSS idle, " + n + " (MiB)", 1, target{}},
		{mRSSPerPeer, "RSS per idle peer (KiB)", 2, atMost(2, "KiB")},
	}
}

// offloadRows show whether the kernel offloads were in use during the
// single-stream run: a kernel counts a GSO or GRO super-packet once, so an
// average above the MTU means batches moved as one.
var offloadRows = []metric{
	{mUnderlay, "UDP datagram on the veth, sender (bytes)", 0, target{}},
	{mTUNRead, "packet read from the TUN, sender (bytes)", 0, target{}},
	{mTUNWrite, "packet written to the TUN, receiver (bytes)", 0, target{}},
}

// results collects every implementation's values per metric, in the order
// the rounds produced them. It is used from the test goroutine only.
type results struct {
	values [len(impls)]map[string][]float64
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

// row returns the cells of m's row: metric, A, B, ratio A/B, target.
func (r *results) row(m metric) []string {
	a, b := r.summarize(0, m.key), r.summarize(1, m.key)
	ratio, verdict := "n/a", m.target.text
	if a.n > 0 && b.n > 0 && b.med > 0 {
		ratio = fmt.Sprintf("%.2fx", a.med/b.med)
	}
	switch {
	case m.target.met == nil:
		verdict = "—"
	case a.n == 0 || b.n == 0:
		verdict += ": not measured"
	case m.target.met(a.med, b.med):
		verdict += ": met"
	default:
		verdict += ": **not met**"
	}
	return []string{m.label, a.cell(m.decimals), b.cell(m.decimals), ratio, verdict}
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
