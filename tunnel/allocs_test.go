package tunnel

import (
	"net/netip"
	"testing"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/packet"
)

// The steady-state packet path allocates nothing: a batch through the send
// pipeline (route, counter, header, pad, seal, send) and through the
// receive pipeline (classify, index lookup, open, replay window, source
// check, TUN write), end to end through the engine with in-memory fakes
// that themselves allocate nothing in discard mode.

const allocBatch = 64

func fillPackets(bufs [][]byte, sizes []int, pkt []byte, n int) {
	for i := 0; i < n; i++ {
		sizes[i] = copy(bufs[i][HeaderRoom:], pkt)
	}
}

// firewallCases are the settings the packet path is measured with: none,
// and rules that admit the measured flow (each batch then checks one
// established flow per packet).
var firewallCases = []struct {
	name string
	on   bool
}{{"no rules", false}, {"firewall", true}}

func TestSendPathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, fc := range firewallCases {
		t.Run(fc.name, func(t *testing.T) { testSendPathNoAllocs(t, fc.on) })
	}
}

func testSendPathNoAllocs(t *testing.T, firewall bool) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	if firewall {
		a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "any"), Reject: true})
	}
	a.bind.SetDiscard(true)
	s, free := newSendScratch(encap.BatchSize)
	defer free()
	before := a.dev.Snapshot().Peers[0].TxPackets
	pkt := ipv4Packet(a.addr, b.addr, make([]byte, 1392))
	allocs := testing.AllocsPerRun(100, func() {
		fillPackets(s.bufs, s.sizes, pkt, allocBatch)
		a.dev.routeBatch(s, allocBatch)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per batch of %d, want 0", allocs, allocBatch)
	}
	if sent := a.dev.Snapshot().Peers[0].TxPackets - before; sent < 100*allocBatch {
		t.Errorf("sent %d packets, want at least %d: the path was not exercised", sent, 100*allocBatch)
	}
}

// sealTrain fills msg with n transport packets of a's session, each
// carrying plain, laid out as a UDP GRO train from from.
func sealTrain(sess *session, msg *encap.Message, from netip.AddrPort, plain []byte, n int) {
	padded := encap.PaddedLen(len(plain), 1420)
	seg := encap.TransportHeaderSize + padded + crypto.TagSize
	buf := msg.Buf[:cap(msg.Buf)]
	for k := range n {
		c, _ := sess.kp.NextSendCounter()
		pkt := buf[k*seg : (k+1)*seg]
		encap.PutTransportHeader(pkt, sess.remoteIndex, c)
		copy(pkt[HeaderRoom:], plain)
		clear(pkt[HeaderRoom+len(plain) : HeaderRoom+padded])
		sess.kp.Seal(pkt[:HeaderRoom], c, pkt[HeaderRoom:HeaderRoom+padded])
	}
	msg.Buf, msg.Seg, msg.From = buf[:n*seg], seg, from
}

// TestReceivePathNoAllocs sends GRO trains of more datagrams in all than
// the TUN batch holds, so the path also splits the batch.
func TestReceivePathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, fc := range firewallCases {
		t.Run(fc.name, func(t *testing.T) { testReceivePathNoAllocs(t, fc.on) })
	}
}

func testReceivePathNoAllocs(t *testing.T, firewall bool) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	if firewall {
		b.setFirewall(t, Firewall{Policy: rulesFor(a, b, "any")})
	}
	b.tun.SetDiscard(true)
	sess := a.dev.Peers()[0].current.Load()
	r, free := newRecvScratch(encap.BatchSize)
	defer free()
	const trains, perTrain = 4, encap.MaxGSOSegments
	plain := ipv4Packet(a.addr, b.addr, make([]byte, 900)) // 64 of them fill a 64 KiB train
	written := b.tun.Written()
	allocs := testing.AllocsPerRun(100, func() {
		// Seal fresh counters each round, as a's send path would.
		for m := range trains {
			sealTrain(sess, &r.msgs[m], a.bind.Addr(), plain, perTrain)
		}
		b.dev.receiveBatch(r, trains)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per batch of %d, want 0", allocs, trains*perTrain)
	}
	if got := b.tun.Written() - written; got < 100*trains*perTrain {
		t.Errorf("wrote %d packets to the TUN, want at least %d: the path was not exercised; drops %v",
			got, 100*trains*perTrain, b.dev.Snapshot().Drops)
	}
}

// TestRejectPathNoAllocs: denied packets answered with RSTs, written back
// into the TUN, allocate nothing either.
func TestRejectPathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := newPair(t, nil)
	establish(t, a, b)
	a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp"), Reject: true})
	a.tun.SetDiscard(true)
	a.bind.SetDiscard(true)
	s, free := newSendScratch(encap.BatchSize)
	defer free()
	syn := tcpPacket(a.addr, b.addr, 40000, 80, packet.TCPFlagSYN, 1, 0, nil)
	written := a.tun.Written()
	allocs := testing.AllocsPerRun(100, func() {
		fillPackets(s.bufs, s.sizes, syn, allocBatch)
		a.dev.routeBatch(s, allocBatch)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per batch of %d, want 0", allocs, allocBatch)
	}
	if got := a.tun.Written() - written; got < 100*allocBatch {
		t.Errorf("wrote %d answers to the TUN, want at least %d: the path was not exercised", got, 100*allocBatch)
	}
}
