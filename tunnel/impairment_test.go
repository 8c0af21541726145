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
	const n = 2000
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
		case pkt := <-b.tun.Outbound:
			seen[string(pkt[28:])]++
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
	if len(seen) < n*8/10 {
		t.Errorf("delivered %d of %d packets over a 10%% loss link, want at least %d", len(seen), n, n*8/10)
	}
	if b.drops(DropReplay) == 0 {
		t.Error("no duplicate was dropped as a replay: the link duplicated nothing?")
	}
	t.Logf("delivered %d of %d; %d duplicates dropped as replays", len(seen), n, b.drops(DropReplay))
}
