package tunnel

import (
	"bytes"
	"encoding/binary"
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

// An inner packet that is not a well-formed IP packet is dropped as
// malformed in both directions: read from the TUN before routing, and
// opened from a peer before the source check. The packet package's tests
// cover every shape; these are one per layer.
func TestMalformedInnerDropped(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	good := ipv4Packet(a.addr, b.addr, []byte("payload"))
	version5 := append([]byte{0x50}, good[1:]...)
	lying := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(lying[2:], uint16(len(good)+100)) // total length past the end and the padding
	cutUDP := append([]byte(nil), good[:24]...)
	binary.BigEndian.PutUint16(cutUDP[2:], 24) // 4 bytes of an 8-byte UDP header
	bad := [][]byte{version5, lying, cutUDP}

	for _, pkt := range bad {
		a.tun.Inject(pkt)
	}
	waitFor(t, "malformed drops from the TUN", func() bool { return a.drops(DropMalformed) == uint64(len(bad)) })

	sess := a.dev.Peers()[0].current.Load()
	for _, pkt := range bad {
		var msg encap.Message
		msg.Buf = make([]byte, 0, 2048)
		sealTrain(sess, &msg, a.bind.Addr(), pkt, 1)
		if err := b.bind.Inject(msg.Buf, a.bind.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "malformed drops after opening", func() bool { return b.drops(DropMalformed) == uint64(len(bad)) })
	expectNoPacket(t, b)
	if got := b.drops(DropDecrypt); got != 0 {
		t.Errorf("got %d decrypt drops, want 0: the packets were not opened", got)
	}

	// Neither side is disturbed.
	a.tun.Inject(good)
	expectPacket(t, b, good)
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
