package tunnel

// In-process engine benchmarks. Two engines are each other's peer over an
// encaptest in-memory UDP pair, with tunneltest TUN fakes inside. A packet
// injected into a's TUN is read by the TUN driver (package tundev, as in
// production: frames behind the virtio-net header, a blocking read then
// non-blocking ones), routed, sealed, "sent", received, opened, checked
// against b's allowed IPs, and written to b's TUN through the driver's
// coalescer, all without a kernel, so the figures are the engine's and
// the driver's own cost per packet.
//
// The fakes allocate a copy of every packet three times: on the way in
// (TUN.Inject), across the in-memory link (encaptest copies each datagram
// into the receiver's queue) and on the way out (TUN.WriteFrame into
// Outbound). So allocs/op includes those 3 copies, and anything above 3
// is the engine's. The packets are UDP and the fake TUN takes no UDP GSO
// (as Linux before 6.2), so every packet is written in a frame of its
// own, and a single core of fakes feeds the engine.

import (
	"fmt"
	"net/netip"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/packet"
	"github.com/overlay-node/overlay-node/policy"
)

const (
	// engineWindow bounds the packets in flight between injection and
	// delivery. It is below every queue in the path (TUN inbound 1024,
	// encaptest receive queue 1024, TUN Outbound 4096), so that the
	// benchmark measures the engine rather than the fakes dropping.
	engineWindow = 512

	// engineHeapLimit is when the garbage collector runs during a
	// benchmark. The fakes copy every packet three times, so with the
	// default pacing (GC when the heap doubles its live size) the GC's cost
	// depends on how much else is live: with a 10,000-flow conntrack table
	// live, the rules case came out three times faster than no rules, whose
	// profile was led by the runtime's madvise and memmove. A fixed limit
	// makes runs with different live heaps pay alike for the fakes'
	// garbage. Runs in one process still speed up as it warms, so compare
	// medians of -count runs.
	engineHeapLimit = 1 << 30

	// engineStall is how long without a delivered packet counts as a lost
	// packet, which fails the benchmark instead of hanging it.
	engineStall = 5 * time.Second

	engineMTU = 1420
)

// BenchmarkEngine moves packets one way through a pair of engines and reports
// packets/s and Gbit/s of inner IP packets, for full-size (1420-byte) and
// small (200-byte) packets.
func BenchmarkEngine(b *testing.B) {
	for _, size := range []int{engineMTU, 200} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchEngine(b, size, nil) })
	}
}

// BenchmarkEngineFirewall is BenchmarkEngine's full-size case with no
// rules and with 100 rules and 10,000 tracked flows at both ends, the
// measured flow admitted by the last rule: the firewall's cost per packet
// is the difference.
func BenchmarkEngineFirewall(b *testing.B) {
	b.Run("no-rules", func(b *testing.B) { benchEngine(b, engineMTU, nil) })
	b.Run("100-rules-10k-flows", func(b *testing.B) {
		benchEngine(b, engineMTU, func(a, z *testNode) {
			fw := Firewall{Policy: hundredRules(a, z), Reject: true}
			a.setFirewall(b, fw)
			z.setFirewall(b, fw)
			trackFlows(b, a, z, 10000)
		})
	})
}

// hundredRules returns 99 rules that admit nothing between a and z and a
// last one that admits UDP from a to z.
func hundredRules(a, z *testNode) *policy.Policy {
	var rules []policy.Rule
	for i := range 99 {
		rules = append(rules, policy.Rule{Name: fmt.Sprintf("other-%d", i),
			From:  []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i), 0}), 24)},
			To:    []netip.Prefix{netip.PrefixFrom(z.addr, 32)},
			Ports: []policy.Ports{{Proto: policy.ProtoTCP, Lo: uint16(1000 + i), Hi: uint16(1000 + i)}}})
	}
	rules = append(rules, policy.Rule{Name: "a-to-z", From: []netip.Prefix{netip.PrefixFrom(a.addr, 32)},
		To: []netip.Prefix{netip.PrefixFrom(z.addr, 32)}, Ports: []policy.Ports{{Proto: policy.ProtoUDP, Hi: 65535}}})
	return policy.Compile(rules)
}

// trackFlows opens n UDP flows from a to z in both tables directly, as
// their first packets would.
func trackFlows(b testing.TB, a, z *testNode, n int) {
	now := a.dev.monotonic(time.Now())
	for i := range n {
		pkt := udpPacket(a.addr, z.addr, uint16(10000+i%50000), uint16(1+i/50000), nil)
		h, _ := packet.Parse(pkt)
		if v, _ := a.dev.conntrack.Load().Check(&h, pkt, conntrack.Out, now); v != conntrack.PassNew {
			b.Fatalf("flow %d: got %v at a, want new", i, v)
		}
		if v, _ := z.dev.conntrack.Load().Check(&h, pkt, conntrack.In, now); v != conntrack.PassNew {
			b.Fatalf("flow %d: got %v at z, want new", i, v)
		}
	}
}

// benchEngine injects b.N packets of size bytes into a's TUN, never more than
// engineWindow ahead of what b's TUN has delivered, and times until the last
// one arrives. setup, if not nil, prepares the pair once it has a session.
func benchEngine(b *testing.B, size int, setup func(a, z *testNode)) {
	a, z := newPair(b, nil)
	pkt := ipv4Packet(a.addr, z.addr, make([]byte, size-28))
	establish(b, a, z)
	if setup != nil {
		setup(a, z)
	}

	var delivered atomic.Int64
	inflight := make(chan struct{}, engineWindow)
	done := make(chan struct{})    // closed when all n packets arrived
	stalled := make(chan struct{}) // closed when delivery stopped
	n := b.N
	go func() {
		defer close(done)
		for got := 0; got < n; {
			select {
			case f := <-z.tun.Outbound:
				k := f.Hdr.Segments(f.Packet)
				got += k
				delivered.Add(int64(k))
				for range k {
					<-inflight
				}
			case <-stalled:
				return
			}
		}
	}()
	go watchStall(&delivered, done, stalled)

	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(engineHeapLimit))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range n {
		select {
		case inflight <- struct{}{}:
		case <-stalled:
		}
		a.tun.Inject(pkt)
	}
	<-done
	b.StopTimer()
	if got := delivered.Load(); got != int64(n) {
		b.Fatalf("delivered %d of %d packets, then nothing for %v; drops at a: %v, at b: %v",
			got, n, engineStall, a.dev.Snapshot().Drops, z.dev.Snapshot().Drops)
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(n)/secs, "pkts/s")
	b.ReportMetric(float64(n)*float64(size)*8/secs/1e9, "Gbit/s")
}

// watchStall closes stalled if delivered stops growing for engineStall
// before done is closed.
func watchStall(delivered *atomic.Int64, done <-chan struct{}, stalled chan<- struct{}) {
	tick := time.NewTicker(engineStall / 5)
	defer tick.Stop()
	last, since := delivered.Load(), time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			if cur := delivered.Load(); cur != last {
				last, since = cur, now
			} else if now.Sub(since) >= engineStall {
				close(stalled)
				return
			}
		}
	}
}
