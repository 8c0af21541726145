package tunnel

import (
	"errors"
	"net/netip"
	"testing"
)

func TestReconfigureKeepsSessionsOfUnchangedPeers(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	p := a.dev.Peers()[0]
	sess := p.current.Load()

	renamed := PeerConfig{
		Name:       "b-renamed",
		PublicKey:  b.key.PublicKey(),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(b.addr, 32), netip.MustParsePrefix("172.20.2.0/24")},
		Endpoint:   b.bind.Addr(),
	}
	if err := a.dev.Reconfigure([]PeerConfig{renamed}); err != nil {
		t.Fatal(err)
	}
	if a.dev.Peers()[0] != p || p.current.Load() != sess {
		t.Fatal("reconfigure replaced an unchanged peer or its session")
	}
	if got := a.dev.Snapshot().Peers[0].Name; got != "b-renamed" {
		t.Errorf("got name %q, want b-renamed", got)
	}
	if got, ok := a.dev.peers.Load().table.Lookup(netip.MustParseAddr("172.20.2.9")); !ok || got != p {
		t.Error("new allowed IP not routed to the peer")
	}
	pkt := ipv4Packet(a.addr, b.addr, []byte("same session"))
	a.tun.Inject(pkt)
	expectPacket(t, b, pkt)
}

func TestReconfigureRemovesPeers(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	old := a.dev.Peers()[0]
	idx := old.current.Load().localIndex
	other := mustKey(t).PublicKey()
	if err := a.dev.Reconfigure([]PeerConfig{{Name: "c", PublicKey: other,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.3/32")}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.dev.indexes.lookup(idx); ok {
		t.Error("removed peer's session index is still live")
	}
	a.tun.Inject(ipv4Packet(a.addr, b.addr, nil))
	waitFor(t, "no_route drop", func() bool { return a.drops(DropNoRoute) == 1 })
}

func TestReconfigureFailureChangesNothing(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	before := a.dev.peers.Load()
	dup := PeerConfig{Name: "x", PublicKey: b.key.PublicKey()}
	err := a.dev.Reconfigure([]PeerConfig{dup, dup})
	if !errors.Is(err, ErrDuplicatePeer) {
		t.Fatalf("got %v, want ErrDuplicatePeer", err)
	}
	if a.dev.peers.Load() != before || a.dev.Snapshot().Peers[0].Name != "b" {
		t.Error("failed reconfigure changed the running peers")
	}
}
