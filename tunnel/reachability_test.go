package tunnel

import (
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/encap/encaptest"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// Unanswered counts from the first unanswered initiation, keeps counting
// after the engine gives up, and drops to zero once a Probe's handshake
// completes.
func TestUnansweredAndProbe(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	p := a.dev.Peer(b.key.PublicKey())
	if p == nil || p.Name() != "b" {
		t.Fatalf("Peer(b's key): got %v, want peer b", p)
	}
	if a.dev.Peer(a.key.PublicKey()) != nil {
		t.Error("Peer(own key): got a peer, want nil")
	}
	if got := p.Unanswered(); got != 0 {
		t.Fatalf("before any initiation: got %v unanswered, want 0", got)
	}

	b.bind.SetImpairment(encaptest.Impairment{Loss: 1}) // b's replies are lost
	log := watchSends(a.bind, clock)
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("anyone?")))
	waitFor(t, "first initiation", func() bool { return log.count(encap.TypeInitiation) == 1 })
	advance(clock, 30*time.Second, 100*time.Millisecond)
	if got := p.Unanswered(); got < 30*time.Second || got > 31*time.Second {
		t.Errorf("30 s after the first initiation: got %v unanswered, want 30 s", got)
	}
	advance(clock, RekeyAttemptTime, time.Second) // the engine gives up
	if got := p.Unanswered(); got < 30*time.Second+RekeyAttemptTime {
		t.Errorf("after giving up: got %v unanswered, want it still counting", got)
	}

	b.bind.SetImpairment(encaptest.Impairment{})
	before := log.count(encap.TypeInitiation)
	p.Probe()
	waitFor(t, "probe initiation", func() bool { return log.count(encap.TypeInitiation) == before+1 })
	waitFor(t, "handshake", func() bool { return p.Unanswered() == 0 })
	p.Probe() // within RekeyTimeout of the last: nothing
	time.Sleep(50 * time.Millisecond)
	if got := log.count(encap.TypeInitiation); got != before+1 {
		t.Errorf("a second Probe at once: got %d initiations, want %d", got, before+1)
	}
}
