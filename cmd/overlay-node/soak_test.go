//go:build soak

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
	"github.com/overlay-node/overlay-node/internal/udprelay"
)

// The soak (make soak; SOAK_DURATION, default 10m): two nodes whose every
// datagram crosses an impairing relay run mixed TCP, UDP and ping for the
// whole duration. Every TCP stream arrives byte-exact and every UDP
// datagram that arrives is intact and arrives once; no active session's
// handshake gets older than RejectAfterTime; RSS, goroutines and open
// descriptors, sampled throughout and printed as a table, end no higher
// than after warm-up (the first third).
func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if s := os.Getenv("SOAK_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SOAK_DURATION=%q: %v", s, err)
		}
		duration = d
	}
	sampleEvery := max(duration/30, 5*time.Second)

	lan := nstest.NewLAN(t, 3)
	relayHost := lan.Hosts[2]
	m := newTestMesh(t, lan.Hosts[:2], nil)
	a, b := m.nodes[0], m.nodes[1]
	// Each node's endpoint is the relay socket that faces the other.
	facingA := netip.AddrPortFrom(relayHost.Addr, 40001)
	facingB := netip.AddrPortFrom(relayHost.Addr, 40002)
	a.endpoint, b.endpoint = facingB.String(), facingA.String()
	m.write(m.nodes)
	var toA, toB *net.UDPConn
	if err := relayHost.InNetns(func() (err error) {
		if toA, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(facingA)); err != nil {
			return err
		}
		toB, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(facingB))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	relay := udprelay.New(toA, toB, netip.AddrPortFrom(a.host.Addr, 51820), netip.AddrPortFrom(b.host.Addr, 51820),
		udprelay.Impairment{Loss: 0.03, Duplicate: 0.03, Reorder: 0.05, Jitter: 2 * time.Millisecond}, 1)
	t.Cleanup(func() { relay.Close() })
	for _, n := range m.nodes {
		obsCleanupSockets(t, n.iface)
		m.start(n, "--metrics", obsMetricsAddr(n))
	}
	ping(t, a, b.addr.Addr())

	var samples []soakSample
	start := time.Now()
	lastSample := start.Add(-sampleEvery)
	rounds, tcpBytes, udpSent, udpGot := 0, int64(0), 0, 0
	for time.Since(start) < duration {
		if time.Since(lastSample) >= sampleEvery {
			lastSample = time.Now()
			samples = append(samples, sampleNodes(t, time.Since(start), a, b))
		}
		rounds++
		from, to := a, b
		if rounds%2 == 0 {
			from, to = b, a
		}
		transfer(t, from.host, to.host, to.addr.Addr(), 4<<20)
		tcpBytes += 4 << 20
		sent, got := udpRound(t, from, to, 2000)
		udpSent, udpGot = udpSent+sent, udpGot+got
		if err := nstest.Ping(t, from.host, to.addr.Addr().String()); err != nil {
			t.Fatalf("round %d: %v", rounds, err)
		}
	}
	samples = append(samples, sampleNodes(t, time.Since(start), a, b))

	var table strings.Builder
	fmt.Fprintf(&table, "%8s | %8s %8s %4s %4s | %8s %8s %4s %4s | %s\n", "t", "a rss", "heap", "gor", "fds", "b rss", "heap", "gor", "fds", "handshake age a/b")
	for _, s := range samples {
		fmt.Fprintf(&table, "%8s |", s.at.Round(time.Second))
		for _, n := range s.nodes {
			fmt.Fprintf(&table, " %6.1fMB %6.1fMB %4d %4d |", float64(n.rss)/(1<<20), float64(n.heap)/(1<<20), n.goroutines, n.fds)
		}
		fmt.Fprintf(&table, " %ds/%ds\n", s.nodes[0].handshakeAge, s.nodes[1].handshakeAge)
	}
	st := relay.Stats()
	t.Logf("soak %v: %d rounds, %d MiB over TCP byte-exact, %d of %d UDP datagrams arrived intact and once, relay %+v\n%s",
		duration, rounds, tcpBytes>>20, udpGot, udpSent, st, table.String())

	// Flat after warm-up: the last sample is no higher than the highest of
	// the first third, give or take a few goroutines and descriptors (a
	// scrape or status connection in flight) and half the heap again
	// (the Go runtime returns memory lazily).
	warm := samples[:max(1, len(samples)/3)]
	last := samples[len(samples)-1]
	for i, name := range []string{"a", "b"} {
		var top soakNode
		for _, s := range warm {
			top.rss = max(top.rss, s.nodes[i].rss)
			top.goroutines = max(top.goroutines, s.nodes[i].goroutines)
			top.fds = max(top.fds, s.nodes[i].fds)
		}
		got := last.nodes[i]
		if got.goroutines > top.goroutines+3 || got.fds > top.fds+3 || got.rss > top.rss*3/2 {
			t.Errorf("node %s grew after warm-up: goroutines %d -> %d, fds %d -> %d, rss %d -> %d",
				name, top.goroutines, got.goroutines, top.fds, got.fds, top.rss, got.rss)
		}
	}
}

// soakNode is one node's side of a sample.
type soakNode struct {
	rss, heap       int64 // resident set; Go heap in use
	goroutines, fds int
	handshakeAge    int64
}

type soakSample struct {
	at    time.Duration
	nodes [2]soakNode
}

// sampleNodes measures both nodes, and fails t if either's session is
// older than RejectAfterTime: traffic flows all the time, so it must have
// been renewed.
func sampleNodes(t *testing.T, at time.Duration, a, b *meshNode) soakSample {
	t.Helper()
	s := soakSample{at: at}
	for i, n := range []*meshNode{a, b} {
		peer := "b"
		if n == b {
			peer = "a"
		}
		age := peerStatus(t, status(t, n), peer).LatestHandshakeAge
		if age == nil {
			t.Fatalf("%v: node %s has no session with %s", at, n.name, peer)
		}
		if *age > 180 {
			t.Errorf("%v: node %s's session with %s is %ds old, over RejectAfterTime", at, n.name, peer, *age)
		}
		metrics := obsSamples(t, obsScrape(t, n))
		s.nodes[i] = soakNode{rss: rssBytes(t, n.proc.PID()), heap: int64(metrics["go_memstats_heap_inuse_bytes"]),
			goroutines: int(metrics["go_goroutines"]), fds: openFDs(t, n.proc.PID()), handshakeAge: *age}
	}
	return s
}

// udpDatagram is the size of the soak's UDP payloads.
const udpDatagram = 1200

// udpRound sends n numbered UDP datagrams across the overlay, from from
// to to, and returns how many were sent and how many arrived. It fails t
// if one arrives corrupted or twice: the outer path duplicates, but the
// replay window must not let a copy through.
func udpRound(t *testing.T, from, to *meshNode, n int) (sent, got int) {
	t.Helper()
	var rx, tx *net.UDPConn
	inNetns(t, to.host, func() (err error) {
		rx, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(to.addr.Addr(), 0)))
		return err
	})
	defer rx.Close()
	inNetns(t, from.host, func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	})
	defer tx.Close()
	seed := rand.Uint64()
	type result struct {
		got int
		err error
	}
	done := make(chan result, 1)
	go func() {
		seen := make(map[uint64]bool, n)
		buf := make([]byte, 2*udpDatagram)
		for {
			rx.SetReadDeadline(time.Now().Add(2 * time.Second))
			m, err := rx.Read(buf)
			if err != nil {
				done <- result{got: len(seen)}
				return
			}
			seq := udpSeq(buf[:m])
			if m != udpDatagram || !bytes.Equal(buf[:m], udpPayload(seed, seq)) {
				done <- result{err: fmt.Errorf("datagram %d arrived corrupted (%d bytes)", seq, m)}
				return
			}
			if seen[seq] {
				done <- result{err: fmt.Errorf("datagram %d arrived twice", seq)}
				return
			}
			seen[seq] = true
		}
	}()
	for i := range n {
		if _, err := tx.Write(udpPayload(seed, uint64(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Microsecond) // about 40 Mbit/s
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("UDP %s -> %s: %v", from.name, to.name, r.err)
	}
	return n, r.got
}

// udpPayload is datagram seq of a round: its number, then bytes that
// depend on the seed and the number.
func udpPayload(seed, seq uint64) []byte {
	p := make([]byte, udpDatagram)
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
		s[8+i] = byte(seq >> (8 * i))
	}
	rand.NewChaCha8(s).Read(p)
	for i := range 8 {
		p[i] = byte(seq >> (8 * i))
	}
	return p
}

func udpSeq(p []byte) uint64 {
	var seq uint64
	for i := 0; i < 8 && i < len(p); i++ {
		seq |= uint64(p[i]) << (8 * i)
	}
	return seq
}
