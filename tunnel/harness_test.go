package tunnel

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/encap/encaptest"
	"github.com/overlay-node/overlay-node/tundev/tundevtest"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// testNode is one engine over in-memory TUN and UDP.
type testNode struct {
	dev  *Device
	tun  *tunneltest.TUN
	bind *encaptest.Bind
	key  crypto.PrivateKey
	addr netip.Addr
}

func mustKey(t testing.TB) crypto.PrivateKey {
	t.Helper()
	k, err := crypto.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newPair builds two engines that are each other's peer: a at 10.0.0.1,
// b at 10.0.0.2. clock may be nil for the system clock.
func newPair(t testing.TB, clock Clock) (a, b *testNode) {
	t.Helper()
	ba, bb := encaptest.NewPair()
	a = &testNode{tun: tunneltest.NewTUN(1420, encap.BatchSize), bind: ba, key: mustKey(t), addr: netip.MustParseAddr("10.0.0.1")}
	b = &testNode{tun: tunneltest.NewTUN(1420, encap.BatchSize), bind: bb, key: mustKey(t), addr: netip.MustParseAddr("10.0.0.2")}
	build := func(self, other *testNode, name string) {
		cfg := Config{
			PrivateKey: self.key,
			MTU:        1420,
			ListenPort: self.bind.Addr().Port(),
			Peers: []PeerConfig{{
				Name:       name,
				PublicKey:  other.key.PublicKey(),
				AllowedIPs: []netip.Prefix{netip.PrefixFrom(other.addr, 32)},
				Endpoint:   other.bind.Addr(),
			}},
		}
		dev, err := New(self.tun, self.bind, cfg, Options{Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		self.dev = dev
	}
	build(a, b, "b")
	build(b, a, "a")
	for _, n := range []*testNode{a, b} {
		if err := n.dev.Up(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.dev.Close() })
	}
	return a, b
}

// ipv4Packet builds a minimal IPv4/UDP packet carrying payload.
func ipv4Packet(src, dst netip.Addr, payload []byte) []byte {
	pkt := make([]byte, 28+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8] = 64
	pkt[9] = 17
	s, d := src.As4(), dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	copy(pkt[28:], payload)
	return pkt
}

// expectPacket waits for the next frame the engine writes to its TUN and
// checks it is want alone, not coalesced with others.
func expectPacket(t testing.TB, n *testNode, want []byte) {
	t.Helper()
	select {
	case got := <-n.tun.Outbound:
		if string(got.Packet) != string(want) || got.Hdr != (tundevtest.VirtioHdr{}) {
			t.Fatalf("got frame %+v %x, want packet %x alone", got.Hdr, got.Packet, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no packet arrived at %s within 5s; drops: %v", n.addr, n.dev.Snapshot().Drops)
	}
}

// expectNoPacket checks nothing reaches n's TUN for a short while.
func expectNoPacket(t testing.TB, n *testNode) {
	t.Helper()
	select {
	case got := <-n.tun.Outbound:
		t.Fatalf("got unexpected packet %x", got.Packet)
	case <-time.After(200 * time.Millisecond):
	}
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (n *testNode) drops(r DropReason) uint64 { return n.dev.Snapshot().Drops[r] }

// establish sends one packet each way so both sides hold a confirmed session.
func establish(t testing.TB, a, b *testNode) {
	t.Helper()
	p := ipv4Packet(a.addr, b.addr, []byte("hello"))
	a.tun.Inject(p)
	expectPacket(t, b, p)
	q := ipv4Packet(b.addr, a.addr, []byte("hello back"))
	b.tun.Inject(q)
	expectPacket(t, a, q)
}

// setUnderLoad forces cookie replies on, as a flood of handshakes would.
func (d *Device) setUnderLoad(on bool) { d.forceUnderLoad.Store(on) }
