package tunnel

import (
	"testing"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/overlay-node/overlay-node/encap"
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

func TestSendPathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := newPair(t, nil)
	establish(t, a, b)
	a.bind.SetDiscard(true)
	s, free := newSendScratch(BatchSize)
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

func TestReceivePathNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := newPair(t, nil)
	establish(t, a, b)
	b.tun.SetDiscard(true)
	sess := a.dev.Peers()[0].current.Load()
	r, free := newRecvScratch(BatchSize)
	defer free()
	src := conn.Endpoint(a.bind.Endpoint())
	for i := range r.eps {
		r.eps[i] = src
	}
	plain := ipv4Packet(a.addr, b.addr, make([]byte, 1392))
	written := b.tun.Written()
	allocs := testing.AllocsPerRun(100, func() {
		// Seal fresh counters each round, as a's send path would.
		for i := 0; i < allocBatch; i++ {
			c, _ := sess.kp.NextSendCounter()
			buf := r.bufs[i]
			encap.PutTransportHeader(buf, sess.remoteIndex, c)
			n := copy(buf[HeaderRoom:], plain)
			padded := encap.PaddedLen(n, 1420)
			clear(buf[HeaderRoom+n : HeaderRoom+padded])
			r.sizes[i] = len(sess.kp.Seal(buf[:HeaderRoom], c, buf[HeaderRoom:HeaderRoom+padded]))
		}
		b.dev.receiveBatch(r, allocBatch)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per batch of %d, want 0", allocs, allocBatch)
	}
	if got := b.tun.Written() - written; got < 100*allocBatch {
		t.Errorf("wrote %d packets to the TUN, want at least %d: the path was not exercised; drops %v",
			got, 100*allocBatch, b.dev.Snapshot().Drops)
	}
}
