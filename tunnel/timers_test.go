package tunnel

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/encap/encaptest"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// sendLog records, on the fake clock, each datagram a side sends.
type sendLog struct {
	mu    sync.Mutex
	clock *tunneltest.Clock
	sends []sent
}

type sent struct {
	at   time.Time
	typ  uint32
	size int
}

func watchSends(b *encaptest.Bind, c *tunneltest.Clock) *sendLog {
	l := &sendLog{clock: c}
	b.SetTap(func(pkt []byte, _ netip.AddrPort) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.sends = append(l.sends, sent{at: c.Now(), typ: binary.LittleEndian.Uint32(pkt), size: len(pkt)})
	})
	return l
}

func (l *sendLog) of(typ uint32) []sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sent
	for _, s := range l.sends {
		if s.typ == typ {
			out = append(out, s)
		}
	}
	return out
}

func (l *sendLog) count(typ uint32) int { return len(l.of(typ)) }

func (l *sendLog) keepalives() int {
	n := 0
	for _, s := range l.of(encap.TypeTransport) {
		if s.size == encap.TransportHeaderSize+16 {
			n++
		}
	}
	return n
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// advance steps the fake clock in small increments, letting the engine's
// goroutines run between steps as they would in real time.
func advance(c *tunneltest.Clock, d, step time.Duration) {
	for d > 0 {
		s := min(step, d)
		c.Advance(s)
		d -= s
		time.Sleep(time.Millisecond)
	}
}

// An unanswered handshake is retried every RekeyTimeout plus at most
// RekeyTimeoutJitterMax, and abandoned RekeyAttemptTime after it began.
func TestHandshakeRetryJitterAndGiveUp(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	b.bind.Close() // b never answers
	log := watchSends(a.bind, clock)
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("lost")))
	waitFor(t, "first initiation", func() bool { return log.count(encap.TypeInitiation) == 1 })

	advance(clock, 2*RekeyAttemptTime, 50*time.Millisecond)
	inits := log.of(encap.TypeInitiation)
	// Retries every RekeyTimeout until RekeyAttemptTime has passed.
	const maxTimerHandshakes = int(RekeyAttemptTime / RekeyTimeout)
	if len(inits) < maxTimerHandshakes-1 || len(inits) > maxTimerHandshakes {
		t.Fatalf("got %d initiations, want %d or %d", len(inits), maxTimerHandshakes-1, maxTimerHandshakes)
	}
	first := inits[0].at
	for i := 1; i < len(inits); i++ {
		gap := inits[i].at.Sub(inits[i-1].at)
		// The fake clock moves in 50 ms steps, so allow one step of slack.
		if gap < RekeyTimeout || gap > RekeyTimeout+RekeyTimeoutJitterMax+50*time.Millisecond {
			t.Errorf("retry %d came %v after the previous, want within [%v, %v]", i, gap, RekeyTimeout, RekeyTimeout+RekeyTimeoutJitterMax)
		}
		if inits[i].at.Sub(first) >= RekeyAttemptTime {
			t.Errorf("initiation %d sent %v after the first, want none after %v", i, inits[i].at.Sub(first), RekeyAttemptTime)
		}
	}
	if got := a.drops(DropHandshakeTimeout); got != 1 {
		t.Errorf("got %d staged packets dropped on give-up, want 1", got)
	}
	if got := a.dev.Snapshot().Peers[0].HandshakesFailed; got != 1 {
		t.Errorf("got %d failed handshakes, want 1", got)
	}
	if got := a.dev.Snapshot().Peers[0].UnansweredInitiations; got != uint64(len(inits)) {
		t.Errorf("got %d unanswered initiations, want %d", got, len(inits))
	}
}

// The unanswered initiations count restarts from zero when a handshake
// completes.
func TestUnansweredInitiationsReset(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	log := watchSends(a.bind, clock)
	b.bind.Close() // b does not answer at first
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("lost")))
	waitFor(t, "first initiation", func() bool { return log.count(encap.TypeInitiation) == 1 })
	if got := a.dev.Snapshot().Peers[0].UnansweredInitiations; got != 1 {
		t.Fatalf("got %d unanswered initiations, want 1", got)
	}
	a2, b2 := newPair(t, clock)
	establish(t, a2, b2)
	for _, n := range []*testNode{a2, b2} {
		if got := n.dev.Snapshot().Peers[0].UnansweredInitiations; got != 0 {
			t.Errorf("after a handshake: got %d unanswered initiations, want 0", got)
		}
	}
}

// establishOnClock brings a session up with the fake clock standing still.
func establishOnClock(t *testing.T, clock *tunneltest.Clock) (a, b *testNode, la, lb *sendLog) {
	a, b = newPair(t, clock)
	la, lb = watchSends(a.bind, clock), watchSends(b.bind, clock)
	establish(t, a, b)
	return a, b, la, lb
}

// A side that received data and sent nothing for KeepaliveTimeout sends a
// keepalive, and not before.
func TestKeepaliveAfterTenSecondsOfSilence(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b, la, _ := establishOnClock(t, clock)
	before := la.keepalives()
	p := ipv4Packet(b.addr, a.addr, []byte("one way"))
	b.tun.Inject(p)
	expectPacket(t, a, p)
	advance(clock, KeepaliveTimeout-100*time.Millisecond, 100*time.Millisecond)
	if got := la.keepalives(); got != before {
		t.Fatalf("got %d keepalives before %v, want %d", got, KeepaliveTimeout, before)
	}
	advance(clock, 200*time.Millisecond, 100*time.Millisecond)
	waitFor(t, "keepalive", func() bool { return la.keepalives() == before+1 })
}

// Data sent without any reply for KeepaliveTimeout+RekeyTimeout starts a
// new handshake.
func TestNewHandshakeAfterFifteenSecondsWithoutReply(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b, la, _ := establishOnClock(t, clock)
	advance(clock, RekeyTimeout+time.Second, time.Second) // past the initiation rate limit
	b.bind.SetImpairment(encaptest.Impairment{Loss: 1})   // b's replies are lost
	before := la.count(encap.TypeInitiation)
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("anyone?")))
	waitFor(t, "data sent", func() bool { return a.dev.Snapshot().Peers[0].TxPackets >= 2 })
	advance(clock, KeepaliveTimeout+RekeyTimeout-100*time.Millisecond, 100*time.Millisecond)
	if got := la.count(encap.TypeInitiation); got != before {
		t.Fatalf("got %d initiations before %v, want %d", got, KeepaliveTimeout+RekeyTimeout, before)
	}
	advance(clock, 200*time.Millisecond, 100*time.Millisecond)
	waitFor(t, "new initiation", func() bool { return la.count(encap.TypeInitiation) == before+1 })
}

// The initiator rekeys once its session is RekeyAfterTime old, on the
// next packet it sends.
func TestRekeyAfterTime(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b, la, lb := establishOnClock(t, clock)
	initiator, other, log := a, b, la
	if !a.dev.Peers()[0].current.Load().kp.IsInitiator() {
		initiator, other, log = b, a, lb
	}
	before := log.count(encap.TypeInitiation)
	send := func() {
		p := ipv4Packet(initiator.addr, other.addr, []byte("tick"))
		initiator.tun.Inject(p)
		expectPacket(t, other, p)
	}
	// Keep the session alive with traffic every few seconds up to just
	// before RekeyAfterTime: no new handshake.
	for el := time.Duration(0); el < RekeyAfterTime-2*time.Second; el += 2 * time.Second {
		advance(clock, 2*time.Second, time.Second)
		send()
		q := ipv4Packet(other.addr, initiator.addr, []byte("tock"))
		other.tun.Inject(q)
		expectPacket(t, initiator, q)
	}
	if got := log.count(encap.TypeInitiation); got != before {
		t.Fatalf("got %d initiations before %v, want %d", got, RekeyAfterTime, before)
	}
	advance(clock, 2*time.Second, time.Second)
	send()
	waitFor(t, "rekey initiation", func() bool { return log.count(encap.TypeInitiation) == before+1 })
}

// A session RejectAfterTime old is not used to send: the packet waits for
// a new handshake instead.
func TestRejectAfterTime(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b, la, _ := establishOnClock(t, clock)
	sess := a.dev.Peers()[0].current.Load()
	b.bind.SetImpairment(encaptest.Impairment{Loss: 1})
	advance(clock, RejectAfterTime, 5*time.Second)
	if !sess.expired(clock.Now()) {
		t.Fatal("session not expired after RejectAfterTime")
	}
	transports := la.count(encap.TypeTransport)
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("late")))
	waitFor(t, "initiation", func() bool {
		s := la.of(encap.TypeInitiation)
		return len(s) > 0 && !s[len(s)-1].at.Before(clock.Now())
	})
	if got := la.count(encap.TypeTransport); got != transports {
		t.Errorf("sent %d transport packets with an expired session", got-transports)
	}
}

// Keys are erased RejectAfterTime*3 after the last session was derived.
func TestKeysZeroedAfterSilence(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b, _, _ := establishOnClock(t, clock)
	p := a.dev.Peers()[0]
	sess := p.current.Load()
	// Silence from here on: otherwise a keepalive that b processes later,
	// in real time, than the fake clock's 15 s step can set off a new
	// handshake, and a new session restarts the 540 s.
	a.bind.SetImpairment(encaptest.Impairment{Loss: 1})
	b.bind.SetImpairment(encaptest.Impairment{Loss: 1})
	advance(clock, RejectAfterTime*3-time.Second, 10*time.Second)
	if p.current.Load() != sess {
		t.Fatal("the session changed during the silence")
	}
	if p.current.Load() == nil {
		t.Fatal("keys erased early")
	}
	advance(clock, 2*time.Second, time.Second)
	waitFor(t, "keys erased", func() bool { return p.current.Load() == nil })
}

// Under load the responder answers with a cookie reply and creates no
// session; the initiator's retry carries MAC2 and completes.
func TestCookieReplyThenRetrySucceeds(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	b.dev.setUnderLoad(true)
	lb := watchSends(b.bind, clock)
	p := ipv4Packet(a.addr, b.addr, []byte("behind a cookie"))
	a.tun.Inject(p)
	waitFor(t, "cookie reply", func() bool { return lb.count(encap.TypeCookieReply) == 1 })
	if got := lb.count(encap.TypeResponse); got != 0 {
		t.Fatalf("got %d responses to an initiation without MAC2, want 0", got)
	}
	advance(clock, RekeyTimeout+RekeyTimeoutJitterMax, 50*time.Millisecond)
	expectPacket(t, b, p)
	st := b.dev.Snapshot()
	if got := st.CookieRepliesSent; got != 1 {
		t.Errorf("got %d cookie replies, want 1", got)
	}
	if got := st.Drops; got != (DropCounts{}) {
		t.Errorf("got drops %v, want none: a cookie reply is not a drop", got)
	}
}

// Under load a source that sends initiations with a valid MAC2 is still
// held to the per-source rate: a flood is mostly dropped as rate_limited
// before any Curve25519 work.
func TestHandshakeFloodRateLimited(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	b.dev.setUnderLoad(true)
	var mu sync.Mutex
	var withMAC2 []byte
	a.bind.SetTap(func(pkt []byte, _ netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		if binary.LittleEndian.Uint32(pkt) == encap.TypeInitiation && !allZero(pkt[encap.InitiationOffsetMAC2:]) {
			withMAC2 = pkt
		}
	})
	a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte("flood")))
	waitFor(t, "cookie reply", func() bool { return b.dev.Snapshot().CookieRepliesSent == 1 })
	advance(clock, RekeyTimeout+RekeyTimeoutJitterMax, 50*time.Millisecond)
	waitFor(t, "initiation with MAC2", func() bool { mu.Lock(); defer mu.Unlock(); return withMAC2 != nil })
	mu.Lock()
	msg := withMAC2
	mu.Unlock()
	const n = 100
	for i := 0; i < n; i++ {
		if err := b.bind.Inject(msg, a.bind.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "flood handled", func() bool {
		return b.drops(DropRateLimited)+b.drops(DropHandshakeInvalid) >= n
	})
	if got := b.drops(DropRateLimited); got < n-10 {
		t.Errorf("got %d of %d flooded initiations rate limited, want at least %d", got, n, n-10)
	}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
