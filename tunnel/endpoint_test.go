package tunnel

import (
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// SetEndpoint moves a peer's endpoint, configured and live, as a caller
// that re-resolved the peer's host name does; the session survives it.
func TestSetEndpoint(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	moved := netip.MustParseAddrPort("127.0.0.9:4000")
	if err := a.dev.SetEndpoint(b.key.PublicKey(), moved); err != nil {
		t.Fatal(err)
	}
	if got := a.dev.Snapshot().Peers[0].Endpoint; got != moved {
		t.Errorf("got endpoint %v, want %v", got, moved)
	}
	if got := a.dev.peers.Load().list[0].settings.Load().endpoint; got != moved {
		t.Errorf("got configured endpoint %v, want %v", got, moved)
	}
	if err := a.dev.SetEndpoint(mustKey(t).PublicKey(), moved); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("unknown key: got %v, want ErrUnknownPeer", err)
	}
}

// Every retry of an unanswered initiation is reported, so that a caller
// can look the peer's host name up again.
func TestHandshakeUnansweredReported(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	var reports atomic.Int64
	want := b.key.PublicKey()
	a.dev.unanswered = func(k crypto.PublicKey) {
		if k.Equal(want) {
			reports.Add(1)
		}
	}
	b.bind.Close() // b never answers
	log := watchSends(a.bind, clock)
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("lost")))
	waitFor(t, "first initiation", func() bool { return log.count(encap.TypeInitiation) == 1 })
	advance(clock, 3*RekeyTimeout+time.Second, 50*time.Millisecond)
	inits := log.count(encap.TypeInitiation)
	if got := reports.Load(); got < 2 || got != int64(inits-1) {
		t.Errorf("got %d reports of an unanswered handshake after %d initiations, want one per retry", got, inits)
	}
}
