package tunnel

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"

	"github.com/overlay-node/overlay-node/encap"
)

func TestDataFlowsBothWays(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	for i := 0; i < 200; i++ {
		p := ipv4Packet(a.addr, b.addr, bytes.Repeat([]byte{byte(i)}, (i*7)%1392))
		a.tun.Inject(p)
		expectPacket(t, b, p)
	}
	st := a.dev.Snapshot()
	if got := st.Peers[0].HandshakesCompleted; got != 1 {
		t.Errorf("got %d handshakes completed, want 1", got)
	}
	// a counts a batch once Send returns, which can be after b has it.
	waitFor(t, "201 packets counted on both sides", func() bool {
		return a.dev.Snapshot().Peers[0].TxPackets >= 201 && b.dev.Snapshot().Peers[0].RxPackets >= 201
	})
}

func TestStagedPacketsArriveInOrder(t *testing.T) {
	a, b := newPair(t, nil)
	var want [][]byte
	for i := 0; i < 20; i++ {
		p := ipv4Packet(a.addr, b.addr, []byte(fmt.Sprintf("packet %d", i)))
		want = append(want, p)
		a.tun.Inject(p)
	}
	for _, p := range want {
		expectPacket(t, b, p)
	}
}

func TestNoRouteCounted(t *testing.T) {
	a, _ := newPair(t, nil)
	a.tun.Inject(ipv4Packet(a.addr, netip.MustParseAddr("10.9.9.9"), nil))
	waitFor(t, "no_route drop", func() bool { return a.drops(DropNoRoute) == 1 })
}

// A peer may only send from its allowed IPs: b claiming another node's
// address is dropped and counted at a.
func TestSpoofedInnerSourceDropped(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	spoofed := ipv4Packet(netip.MustParseAddr("10.0.0.3"), a.addr, []byte("spoof"))
	b.tun.Inject(spoofed)
	waitFor(t, "source_not_allowed drop", func() bool { return a.drops(DropSourceNotAllowed) == 1 })
	expectNoPacket(t, a)
}

// A captured transport packet injected again is authenticated but fails
// the replay window, and is counted.
func TestReplayedTransportDropped(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	var mu sync.Mutex
	var captured []byte
	a.bind.SetTap(func(pkt []byte, _ netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		if typ, err := encap.Classify(pkt); err == nil && typ == encap.TypeTransport && len(pkt) > 32 {
			captured = append([]byte(nil), pkt...)
		}
	})
	p := ipv4Packet(a.addr, b.addr, []byte("once only"))
	a.tun.Inject(p)
	expectPacket(t, b, p)
	mu.Lock()
	replay := captured
	mu.Unlock()
	if replay == nil {
		t.Fatal("captured no transport packet")
	}
	if err := b.bind.Inject(replay, a.bind.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replay drop", func() bool { return b.drops(DropReplay) == 1 })
	expectNoPacket(t, b)
}

// Garbage at the port is counted and does not disturb the tunnel.
func TestGarbageCountedAndTunnelSurvives(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 500
	for i := 0; i < n; i++ {
		g := make([]byte, 1+rng.IntN(200))
		for j := range g {
			g[j] = byte(rng.Uint32())
		}
		g[0] = byte(5 + rng.IntN(250)) // not a message type
		if err := b.bind.Inject(g, a.bind.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "malformed drops", func() bool { return b.drops(DropMalformed) == n })
	p := ipv4Packet(a.addr, b.addr, []byte("still here"))
	a.tun.Inject(p)
	expectPacket(t, b, p)
}

// A forged transport packet (valid index, bad tag) is dropped as a
// decrypt failure and does not advance the replay window.
func TestForgedTransportDropped(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	sess := a.dev.Peers()[0].current.Load()
	forged := make([]byte, 64)
	encap.PutTransportHeader(forged, sess.remoteIndex, 1<<20)
	if err := b.bind.Inject(forged, a.bind.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "decrypt drop", func() bool { return b.drops(DropDecrypt) == 1 })
	// The window did not move to 1<<20: ordinary counters still pass.
	p := ipv4Packet(a.addr, b.addr, []byte("after forgery"))
	a.tun.Inject(p)
	expectPacket(t, b, p)
}

func TestParseInner(t *testing.T) {
	src, dst := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.4.5.6")
	good := ipv4Packet(src, dst, []byte("x"))
	padded := append(append([]byte(nil), good...), make([]byte, 15)...)
	v6 := make([]byte, 48)
	v6[0] = 0x60
	v6[5] = 8
	v6[23], v6[39] = 1, 2
	tests := []struct {
		name   string
		pkt    []byte
		ok     bool
		length int
	}{
		{"ipv4", good, true, len(good)},
		{"ipv4 padded", padded, true, len(good)},
		{"ipv4 truncated", good[:19], false, 0},
		{"ipv4 length beyond buffer", good[:len(good)-1], false, 0},
		{"ipv6", v6, true, 48},
		{"ipv6 truncated", v6[:39], false, 0},
		{"version 5", []byte{0x50, 0, 0, 0}, false, 0},
		{"empty", nil, false, 0},
	}
	for _, tt := range tests {
		h, ok := parseInner(tt.pkt)
		if ok != tt.ok || (ok && h.length != tt.length) {
			t.Errorf("%s: got ok=%v length=%d, want ok=%v length=%d", tt.name, ok, h.length, tt.ok, tt.length)
		}
	}
	if h, _ := parseInner(good); h.src != src || h.dst != dst {
		t.Errorf("got src %v dst %v, want %v %v", h.src, h.dst, src, dst)
	}
}

func TestParseInnerNoAllocs(t *testing.T) {
	pkt := ipv4Packet(netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.4.5.6"), make([]byte, 1392))
	if n := testing.AllocsPerRun(1000, func() { parseInner(pkt) }); n != 0 {
		t.Errorf("got %v allocs, want 0", n)
	}
}

func FuzzParseInner(f *testing.F) {
	f.Add(ipv4Packet(netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("10.4.5.6"), []byte("seed")))
	f.Add([]byte{0x60, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h, ok := parseInner(pkt)
		if ok && (h.length > len(pkt) || !h.src.IsValid() || !h.dst.IsValid()) {
			t.Fatalf("accepted inconsistent header: %+v for %d bytes", h, len(pkt))
		}
	})
}

// A handshake message whose MAC1 is wrong is dropped silently: counted,
// never answered, so a scanner cannot tell a node is there.
func TestBadMAC1DroppedWithoutReply(t *testing.T) {
	a, b := newPair(t, nil)
	var sent sync.WaitGroup
	replies := 0
	var mu sync.Mutex
	b.bind.SetTap(func([]byte, netip.AddrPort) { mu.Lock(); replies++; mu.Unlock() })
	msg := make([]byte, encap.InitiationSize)
	msg[0] = encap.TypeInitiation
	for i := 4; i < len(msg); i++ {
		msg[i] = byte(i)
	}
	if err := b.bind.Inject(msg, a.bind.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bad_mac1 drop", func() bool { return b.drops(DropBadMAC1) == 1 })
	sent.Wait()
	mu.Lock()
	defer mu.Unlock()
	if replies != 0 {
		t.Errorf("got %d replies to a bad MAC1, want 0", replies)
	}
}
