package tunnel

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/encap/encaptest"
)

// The endpoint moves only on an authenticated, non-replayed packet: a
// forgery or a replay from a new address must not redirect our traffic.
func TestRoamingOnlyOnAuthenticatedFreshPackets(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	endpointOfA := func() netip.AddrPort { return b.dev.Snapshot().Peers[0].Endpoint }
	home := endpointOfA()

	var mu sync.Mutex
	var captured []byte
	a.bind.SetTap(func(pkt []byte, _ netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		if typ, _ := encap.Classify(pkt); typ == encap.TypeTransport && len(pkt) > 32 && captured == nil {
			captured = pkt
		}
	})
	a.bind.SetImpairment(encaptest.Impairment{Loss: 1}) // b sees it only when we inject it
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("roam")))
	waitFor(t, "captured packet", func() bool { mu.Lock(); defer mu.Unlock(); return captured != nil })

	roamed := netip.MustParseAddrPort("127.0.0.9:4000")
	attacker := netip.MustParseAddrPort("127.0.0.66:6666")

	forged := append([]byte(nil), captured...)
	forged[len(forged)-1] ^= 1
	b.bind.Inject(forged, attacker)
	waitFor(t, "decrypt drop", func() bool { return b.drops(DropDecrypt) == 1 })
	if got := endpointOfA(); got != home {
		t.Fatalf("forged packet moved the endpoint to %v, want %v", got, home)
	}

	b.bind.Inject(captured, roamed)
	<-b.tun.Outbound
	if got := endpointOfA(); got != roamed {
		t.Fatalf("authenticated packet: got endpoint %v, want %v", got, roamed)
	}

	b.bind.Inject(captured, attacker)
	waitFor(t, "replay drop", func() bool { return b.drops(DropReplay) == 1 })
	if got := endpointOfA(); got != roamed {
		t.Fatalf("replayed packet moved the endpoint to %v, want %v", got, roamed)
	}
}

// A node that lost its keys (it restarted) answers the peer's transport
// packets, which name an index it no longer knows, with a handshake.
func TestUnknownIndexFromKnownPeerRehandshakes(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	bp := b.dev.Peers()[0]
	bp.zeroSessions() // as after a restart: b has no keys, a still does
	p := ipv4Packet(a.addr, b.addr, []byte("after restart"))
	a.tun.Inject(p)
	waitFor(t, "no_session drop", func() bool { return b.drops(DropNoSession) >= 1 })
	waitFor(t, "new session at b", func() bool { return bp.current.Load() != nil })
	q := ipv4Packet(b.addr, a.addr, []byte("back again"))
	b.tun.Inject(q)
	expectPacket(t, a, q)
}

// In a batch that mixes sources, the endpoint comes from the authenticated
// packet's own datagram, not from another datagram of the batch.
func TestRoamingUsesThePacketsOwnSource(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	b.tun.SetDiscard(true)
	sess := a.dev.Peers()[0].current.Load()
	r, free := newRecvScratch(encap.BatchSize)
	defer free()
	attacker := netip.MustParseAddrPort("127.0.0.66:6666")
	roamed := netip.MustParseAddrPort("127.0.0.9:4000")

	r.msgs[0].Buf = r.msgs[0].Buf[:copy(r.msgs[0].Buf, []byte{0xff, 1, 2, 3})] // garbage first
	r.msgs[0].From = attacker
	sealTrain(sess, &r.msgs[1], roamed, ipv4Packet(a.addr, b.addr, []byte("from a new address")), 1)

	b.dev.receiveBatch(r, 2)
	if got := b.dev.Snapshot().Peers[0].Endpoint; got != roamed {
		t.Errorf("got endpoint %v, want %v (the authenticated packet's source)", got, roamed)
	}
}
