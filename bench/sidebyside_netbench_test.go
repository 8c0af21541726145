//go:build netbench

package bench_test

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/flood"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// settings are the knobs of a run, from the environment.
type settings struct {
	rounds  int // BENCH_ROUNDS: rounds of every implementation in turn, at least 1
	seconds int // BENCH_SECONDS: length of each iperf3 run
	peers   int // BENCH_PEERS: nodes in the scale mesh; 0 skips it
}

// loadSettings reads the environment, with the defaults `make bench` uses:
// 5 rounds of 5 s runs, and a 10,000-node mesh.
func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{
		rounds:  envInt(t, "BENCH_ROUNDS", 5, 1),
		seconds: envInt(t, "BENCH_SECONDS", 5, 1),
		peers:   envInt(t, "BENCH_PEERS", 10000, 0),
	}
	if s.peers == 1 || s.peers == 2 {
		t.Fatalf("BENCH_PEERS=%d: the scale mesh compares 2 nodes with more, so want 0 (skip it) or at least 3", s.peers)
	}
	return s
}

// envInt returns the integer in the environment variable name, or def if it
// is unset, failing t if it is not an integer of at least min.
func envInt(t *testing.T, name string, def, min int) int {
	t.Helper()
	str := os.Getenv(name)
	if str == "" {
		return def
	}
	n, err := strconv.Atoi(str)
	if err != nil || n < min {
		t.Fatalf("%s=%q: want an integer of at least %d", name, str, min)
	}
	return n
}

// estimate is how long the side-by-side should take with s on 2 cores,
// besides building the binaries: per implementation and round, three iperf3
// runs (four, with about 2 s more, for those the flood runs against) and
// about 4 s of start, pings and iperf3 set-up; per round of the
// scale test, about 8 s of settling and 0.2 ms per node of the mesh; per
// round, the DNS load (one run) and the firewall variant (one iperf3 run
// and about 5 s of start and flows).
func (s settings) estimate() time.Duration {
	per := time.Duration(len(impls))*(time.Duration(3*s.seconds)*time.Second+4*time.Second) +
		2*time.Duration(s.seconds+2)*time.Second +
		time.Duration(2*s.seconds+5)*time.Second
	if s.peers > 0 {
		per += 8*time.Second + time.Duration(s.peers)*200*time.Microsecond
	}
	return time.Duration(s.rounds) * per
}

// TestSideBySide is the netns benchmark behind `make bench`: overlay-node,
// wireguard-go and Nebula (twice: at its defaults and tuned), one pair at a
// time over the same veth, alternating round by round, then the scale test;
// it prints the comparison and, if every round succeeded, writes it to
// RESULTS.md.
func TestSideBySide(t *testing.T) {
	nstest.RequireRoot(t)
	for _, tool := range []string{"iperf3", "ping", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the benchmark needs %s (make deps); skipping", tool)
		}
	}
	s := loadSettings(t)
	t.Logf("%d rounds of %d implementations, %d s per iperf3 run, %d-node scale mesh: about %v, after the builds",
		s.rounds, len(impls), s.seconds, s.peers, s.estimate().Round(10*time.Second))
	nstest.BuildOverlayNode(t)
	nstest.BuildWireGuardGo(t)
	buildNebula(t)
	started := time.Now()
	p := newVethPair(t)
	res := newResults()
	cpu0, err := takeCPUSnapshot()
	if err != nil {
		t.Logf("cannot tell other load on the machine: %v", err)
	}

	for round := 1; round <= s.rounds; round++ {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			for i, im := range impls {
				t.Run(im.name, func(t *testing.T) {
					res.runs++
					tp := im.start(t, p)
					res.addRound(round, i, measureRound(t, p, tp, s.seconds))
				})
			}
			t.Run("overlay-node+policy", func(t *testing.T) {
				res.runs++
				res.addRound(round, 0, measurePolicy(t, p, s.seconds, res.roundSample(round, 0)))
			})
		})
	}
	if s.peers > 0 {
		t.Run("scale", func(t *testing.T) { runScale(t, p, s, res) })
	}

	report := res.markdown(newRunInfo(s, started, cpu0))
	fmt.Printf("\n%s\n", report)
	want := s.rounds * (len(impls) + 1) // +1: overlay-node+policy
	if s.peers > 0 {
		for _, im := range impls {
			if im.scale != nil {
				want += s.rounds * 2
			}
		}
	}
	switch {
	case t.Failed():
		t.Logf("not writing %s: some measurements failed", resultsFile)
		return
	case res.runs < want:
		t.Logf("not writing %s: -run selected %d of the %d measurements", resultsFile, res.runs, want)
		return
	}
	if err := writeReport(report); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote bench/%s", resultsFile)
}

// measureRound takes one implementation's figures over a running tunnel:
// latency first, on the idle path, then single-stream TCP with the CPU and
// interface counters around it, four-stream TCP, small-packet UDP, the
// daemons' memory after all of it, and last, for a pair that serves DNS,
// the DNS load. A measurement that fails fails t and is
// left out of the sample.
func measureRound(t *testing.T, p *vethPair, tp *tunnelPair, secs int) sample {
	ctx := t.Context()
	s := sample{}
	fail := func(what string, err error) {
		t.Errorf("%s: %v", what, err)
	}

	raw, err1 := pingRTT(ctx, p.A, p.B.Addr)
	tun, err2 := pingRTT(ctx, p.A, overlayB.Addr())
	if err := firstErr(err1, err2); err != nil {
		fail("ping", err)
	} else {
		s[mRawRTT], s[mAddedRTT] = raw, tun-raw
	}

	startIperfServer(t, p.B, overlayB.Addr())
	procs := tp.procs[:]
	cpu0, errCPU := totalCPU(procs)
	veth0, errV := readCounters(ctx, p.A, p.A.Iface)
	tunA0, errA := readCounters(ctx, p.A, tp.ifaces[0])
	tunB0, errB := readCounters(ctx, p.B, tp.ifaces[1])
	if r, err := iperf3(ctx, p.A, overlayB.Addr(), secs); err != nil {
		fail("TCP, 1 stream", err)
	} else {
		s[mTCP1], s[mTCP1Retx] = r.BitsPerSecond/1e9, r.Retransmits
		cpu1, err := totalCPU(procs)
		if err = firstErr(errCPU, err); err != nil {
			fail("CPU time", err)
		} else {
			s[mCPUPerGbit] = (cpu1 - cpu0) / (r.Bytes * 8 / 1e9)
		}
		veth1, err1 := readCounters(ctx, p.A, p.A.Iface)
		tunA1, err2 := readCounters(ctx, p.A, tp.ifaces[0])
		tunB1, err3 := readCounters(ctx, p.B, tp.ifaces[1])
		if err := firstErr(errV, errA, errB, err1, err2, err3); err != nil {
			fail("interface counters", err)
		} else if carried := tunB1.rxBytes - tunB0.rxBytes; carried < r.Bytes {
			// Headers included, the receiving daemon writes more than
			// iperf3's payload into its TUN, unless the traffic went
			// some other way.
			fail("TCP, 1 stream", fmt.Errorf("%s carried %.0f bytes into %s, fewer than the %.0f iperf3 received",
				tp.procs[1].Name, carried, tp.ifaces[1], r.Bytes))
		} else {
			t.Logf("1 stream: iperf3 received %.0f MB; %s wrote %.0f MB into %s", r.Bytes/1e6, tp.procs[1].Name, carried/1e6, tp.ifaces[1])
			// The kernel transmits into a TUN what the daemon reads, and
			// receives from it what the daemon writes.
			s[mUnderlay] = veth1.avgTx(veth0)
			s[mTUNRead] = tunA1.avgTx(tunA0)
			s[mTUNWrite] = tunB1.avgRx(tunB0)
		}
	}

	if tp.responder != (crypto.PublicKey{}) {
		if r, err := iperf3Flooded(t, p, tp, secs); err != nil {
			fail("TCP, 1 stream, flooded", err)
		} else {
			s[mTCP1Flood] = r.BitsPerSecond / 1e9
			if v, ok := s[mTCP1]; ok && v > 0 {
				s[mFloodKept] = s[mTCP1Flood] / v
			}
		}
	}

	if r, err := iperf3(ctx, p.A, overlayB.Addr(), secs, "-P", "4"); err != nil {
		fail("TCP, 4 streams", err)
	} else {
		s[mTCP4] = r.BitsPerSecond / 1e9
	}
	if r, err := iperf3(ctx, p.A, overlayB.Addr(), secs, "-u", "-l", "200", "-b", "0"); err != nil {
		fail("UDP 200 B", err)
	} else {
		s[mUDPkpps], s[mUDPLoss] = r.receivedPPS()/1e3, r.LostPercent
	}

	var rss float64
	for _, proc := range procs {
		v, err := rssBytes(proc.PID())
		if err != nil {
			fail("RSS", err)
			rss = math.NaN()
		}
		rss += v / float64(len(procs)) / (1 << 20)
	}
	s[mRSS] = rss

	// After the RSS, which compares daemons that do the same work.
	if tp.servesDNS {
		// From A's namespace to A's own overlay address, as a container
		// asks the node of its host: as fast as it answers, then at the
		// target's rate; then to B's, through the tunnel.
		for _, to := range []struct {
			server        netip.Addr
			rate          float64
			qps, p50, p99 string
			what          string
		}{
			{overlayA.Addr(), 0, mDNSQPS, "", mDNSP99, "own node, saturated"},
			{overlayA.Addr(), dnsTargetRate, mDNSPacedQPS, mDNSPacedP50, mDNSPacedP99, fmt.Sprintf("own node, %.0f/s offered", dnsTargetRate)},
			{overlayB.Addr(), 0, mDNSPeerQPS, "", mDNSPeerP99, "peer through the tunnel, saturated"},
		} {
			r, err := dnsLoad(p.A, to.server, secs, to.rate)
			if err != nil {
				fail("DNS load to the "+to.what, err)
				continue
			}
			s[to.qps], s[to.p99] = r.qps, float64(r.p99)/1e6
			if to.p50 != "" {
				s[to.p50] = float64(r.p50) / 1e6
			}
			if to.rate > 0 {
				s[mDNSPacedLate] = float64(r.lateP99) / 1e6
			}
			t.Logf("dns to the %s: %d queries answered (%.0f/s), %d lost; p50 %v, p99 %v; the load sent late by %v at p99",
				to.what, r.answered, r.qps, r.lost, r.p50, r.p99, r.lateP99)
		}
	}

	t.Logf("tcp1 flooded %.2f Gbit/s (%.2f kept)", s[mTCP1Flood], s[mFloodKept])
	t.Logf("tcp1 %.2f Gbit/s (%.0f retransmits), tcp4 %.2f Gbit/s, udp %.0f kpps (%.1f%% lost), added rtt %.0f µs (raw %.0f), cpu %.3f s/Gbit, rss %.1f MiB",
		s[mTCP1], s[mTCP1Retx], s[mTCP4], s[mUDPkpps], s[mUDPLoss], s[mAddedRTT], s[mRawRTT], s[mCPUPerGbit], s[mRSS])
	return s
}

// The handshake flood: what a node's port sees when the internet finds it,
// as issue-sized as the machine allows. Initiations with a valid MAC1 for
// B's key from 150 sources of floodSources, at 20,000 per second, from a
// second before the single-stream run until it ends.
const (
	floodRate    = 20000
	floodSenders = 150
)

// iperf3Flooded runs the single-stream TCP test while the flood hits B's
// port, and logs what the flood sent and how many cookie replies came back.
func iperf3Flooded(t *testing.T, p *vethPair, tp *tunnelPair, secs int) (iperfResult, error) {
	var sources []netip.Addr
	for a := floodSources.Addr().Next(); len(sources) < floodSenders; a = a.Next() {
		sources = append(sources, a)
	}
	var f *flood.Flood
	err := p.Internet.InNetns(func() (err error) {
		f, err = flood.Open(flood.Config{
			Target:    netip.AddrPortFrom(p.Internet.GatewayAddr, listenPort),
			Responder: tp.responder,
			Sources:   sources,
			Rate:      floodRate,
			Duration:  time.Duration(secs+1)*time.Second + 500*time.Millisecond,
		})
		return err
	})
	if err != nil {
		return iperfResult{}, err
	}
	defer f.Close()
	stop := make(chan struct{})
	done := make(chan flood.Result, 1)
	go func() { done <- f.Run(stop) }()
	time.Sleep(time.Second)
	r, err := iperf3(t.Context(), p.A, overlayB.Addr(), secs)
	close(stop)
	res := <-done
	t.Logf("flood: %d initiations sent (%d refused locally), %d cookie replies came back", res.Sent, res.SendErrors, res.CookieReplies)
	return r, err
}

// firstErr returns the first non-nil error.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
