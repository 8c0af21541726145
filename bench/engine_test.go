package bench_test

// In-process engine benchmarks. Two tunnel.Device engines are each other's
// peer over an encaptest in-memory UDP pair, with tunneltest TUN fakes inside.
// A packet injected into a's TUN is routed, sealed, "sent", received, opened,
// checked against b's allowed IPs and written to b's TUN, all without a
// kernel, so the figures are the engine's own cost per packet.
//
// The fakes allocate a copy of every packet three times: on the way in
// (TUN.Inject), across the in-memory link (encaptest copies each datagram
// into the receiver's queue) and on the way out (TUN.Write into Outbound). So
// allocs/op includes those 3 copies, and anything above 3 is the engine's.
// The fakes have no offloads: every packet is one datagram, which is the
// engine's worst case, and a single core of fakes feeds the engine.
//
// This file holds Benchmark functions only, so `go test` runs none of it.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap/encaptest"
	"github.com/overlay-node/overlay-node/tunnel"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

const (
	// engineWindow bounds the packets in flight between injection and
	// delivery. It is below every queue in the path (TUN inbound 1024,
	// encaptest receive queue 1024, TUN Outbound 4096), so that the
	// benchmark measures the engine rather than the fakes dropping.
	engineWindow = 512

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
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) { benchEngine(b, size) })
	}
}

// benchEngine injects b.N packets of size bytes into a's TUN, never more than
// engineWindow ahead of what b's TUN has delivered, and times until the last
// one arrives.
func benchEngine(b *testing.B, size int) {
	a, z := newEnginePair(b)
	pkt := udpPacket(a.addr, z.addr, size)
	establish(b, a, z)

	var delivered atomic.Int64
	inflight := make(chan struct{}, engineWindow)
	done := make(chan struct{})    // closed when all n packets arrived
	stalled := make(chan struct{}) // closed when delivery stopped
	n := b.N
	go func() {
		defer close(done)
		for range n {
			select {
			case <-z.tun.Outbound:
			case <-stalled:
				return
			}
			delivered.Add(1)
			<-inflight
		}
	}()
	go watchStall(&delivered, done, stalled)

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
			got, n, engineStall, a.drops(), z.drops())
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

// engineNode is one engine over in-memory TUN and UDP.
type engineNode struct {
	dev  *tunnel.Device
	tun  *tunneltest.TUN
	bind *encaptest.Bind
	key  crypto.PrivateKey
	addr netip.Addr
}

// newEnginePair builds and starts two engines that are each other's only
// peer: a at 10.0.0.1, z at 10.0.0.2. b's cleanup closes them.
func newEnginePair(b *testing.B) (a, z *engineNode) {
	b.Helper()
	ba, bz := encaptest.NewPair()
	a = &engineNode{bind: ba, addr: netip.MustParseAddr("10.0.0.1")}
	z = &engineNode{bind: bz, addr: netip.MustParseAddr("10.0.0.2")}
	for _, n := range []*engineNode{a, z} {
		k, err := crypto.GeneratePrivateKey()
		if err != nil {
			b.Fatal(err)
		}
		n.key = k
		n.tun = tunneltest.NewTUN(engineMTU, tunnel.BatchSize)
	}
	for _, pair := range [][2]*engineNode{{a, z}, {z, a}} {
		self, other := pair[0], pair[1]
		cfg := tunnel.Config{
			PrivateKey: self.key,
			MTU:        engineMTU,
			ListenPort: self.bind.Addr().Port(),
			Peers: []tunnel.PeerConfig{{
				Name:       other.addr.String(),
				PublicKey:  other.key.PublicKey(),
				AllowedIPs: []netip.Prefix{netip.PrefixFrom(other.addr, 32)},
				Endpoint:   other.bind.Addr(),
			}},
		}
		dev, err := tunnel.New(self.tun, self.bind, cfg, tunnel.Options{})
		if err != nil {
			b.Fatal(err)
		}
		self.dev = dev
	}
	for _, n := range []*engineNode{a, z} {
		if err := n.dev.Up(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { n.dev.Close() })
	}
	return a, z
}

// establish sends one packet each way, so both sides hold a confirmed
// session before the timer starts.
func establish(b *testing.B, a, z *engineNode) {
	b.Helper()
	for _, dir := range [][2]*engineNode{{a, z}, {z, a}} {
		from, to := dir[0], dir[1]
		from.tun.Inject(udpPacket(from.addr, to.addr, 64))
		select {
		case <-to.tun.Outbound:
		case <-time.After(5 * time.Second):
			b.Fatalf("handshake %v -> %v: no packet within 5s; drops: %v", from.addr, to.addr, from.drops())
		}
	}
}

// drops returns the engine's nonzero drop counters by reason.
func (n *engineNode) drops() map[string]uint64 {
	out := make(map[string]uint64)
	snap := n.dev.Snapshot()
	for _, r := range tunnel.DropReasons() {
		if v := snap.Drops[r]; v != 0 {
			out[r.String()] = v
		}
	}
	return out
}

// udpPacket builds an IPv4/UDP packet of size bytes in all from src to dst.
func udpPacket(src, dst netip.Addr, size int) []byte {
	pkt := make([]byte, size)
	pkt[0] = 0x45 // version 4, 20-byte header
	binary.BigEndian.PutUint16(pkt[2:], uint16(size))
	pkt[8] = 64 // TTL
	pkt[9] = 17 // UDP
	s, d := src.As4(), dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[20:], 40000)
	binary.BigEndian.PutUint16(pkt[22:], 5201)
	binary.BigEndian.PutUint16(pkt[24:], uint16(size-20))
	return pkt
}
