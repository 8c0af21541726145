package tunnel

import (
	"fmt"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/encap/encaptest"
)

// Over a link that loses, duplicates and reorders datagrams, every packet
// that arrives is delivered once: duplicates die in the replay window,
// reordered packets inside it pass.
func TestLossyLinkDeliversEachPacketAtMostOnce(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	a.bind.SetImpairment(encaptest.Impairment{Loss: 0.1, Duplicate: 0.2, Reorder: 0.3, Seed: 7})
	received := b.bind.Stats().Received
	// Fewer datagrams than b's receive queue holds, duplicates included,
	// so the in-memory link itself never overflows.
	const n = 800
	sent := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		payload := fmt.Sprintf("packet %04d", i)
		sent[payload] = true
		a.tun.Inject(ipv4Packet(a.addr, b.addr, []byte(payload)))
	}
	seen := make(map[string]int)
collect: // until the link has been quiet for half a second
	for {
		select {
		case f := <-b.tun.Outbound:
			seen[string(f.Packet[28:])]++
		case <-time.After(500 * time.Millisecond):
			break collect
		}
	}
	for payload, times := range seen {
		if !sent[payload] {
			t.Fatalf("delivered a packet that was never sent: %q", payload)
		}
		if times != 1 {
			t.Errorf("%q delivered %d times, want once", payload, times)
		}
	}
	// Every datagram that reached b was delivered or, if a duplicate,
	// dropped as a replay: none was lost to reordering.
	if st := b.bind.Stats(); st.Overflow != 0 {
		t.Fatalf("the in-memory link overflowed %d datagrams: the test sends too many", st.Overflow)
	}
	received = b.bind.Stats().Received - received
	if got := uint64(len(seen)) + b.drops(DropReplay); got != received {
		t.Errorf("delivered %d + replays %d = %d, want the %d datagrams b received", len(seen), b.drops(DropReplay), got, received)
	}
	if b.drops(DropReplay) == 0 || len(seen) < n/2 {
		t.Errorf("delivered %d, %d replays: the impaired link did not exercise the window", len(seen), b.drops(DropReplay))
	}
	t.Logf("delivered %d of %d; %d duplicates dropped as replays", len(seen), n, b.drops(DropReplay))
}
