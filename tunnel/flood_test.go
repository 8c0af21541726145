package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// floodInitiation returns an initiation to key with a valid MAC1 and
// random contents, as a flood sends.
func floodInitiation(t *testing.T, key crypto.PublicKey) []byte {
	t.Helper()
	msg := make([]byte, encap.InitiationSize)
	if _, err := rand.Read(msg); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint32(msg, encap.TypeInitiation)
	crypto.NewCookieGenerator(key).AddMACs(msg, epoch)
	return msg
}

// Under load a flood from many sources gets at most the burst of the
// global cookie-reply cap while the clock stands still; the rest is
// dropped unanswered as rate_limited. A peer's configured endpoint still
// gets its reply when the cap is spent.
func TestCookieRepliesCapped(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	a, b := newPair(t, clock)
	b.dev.setUnderLoad(true)
	msg := floodInitiation(t, b.key.PublicKey())
	const sources = 3 * CookieReplyRate / 10
	handled := func() uint64 {
		st := b.dev.Snapshot()
		return st.CookieRepliesSent + st.Drops[DropRateLimited] + st.Drops[DropQueueFull]
	}
	src := netip.MustParseAddr("198.19.0.1")
	for i := 0; i < sources; i++ {
		if err := b.bind.Inject(msg, netip.AddrPortFrom(src, 40000)); err != nil {
			t.Fatal(err)
		}
		src = src.Next()
		if i%50 == 49 {
			waitFor(t, "the flood handled", func() bool { return handled() == uint64(i+1) })
		}
	}
	st := b.dev.Snapshot()
	if got, want := st.CookieRepliesSent, uint64(CookieReplyRate/10); got != want {
		t.Errorf("got %d cookie replies to %d sources, want the burst of %d", got, sources, want)
	}
	if got, want := st.Drops[DropRateLimited], uint64(sources-CookieReplyRate/10); got != want {
		t.Errorf("got %d rate_limited drops, want %d", got, want)
	}

	// a, at its configured endpoint, is exempt from the spent global cap.
	if err := b.bind.Inject(msg, a.bind.Addr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a cookie reply to a peer's endpoint", func() bool {
		return b.dev.Snapshot().CookieRepliesSent == uint64(CookieReplyRate/10)+1
	})
}

// One source gets at most the per-source burst of cookie replies, however
// many initiations it sends at once.
func TestCookieRepliesPerSource(t *testing.T) {
	clock := tunneltest.NewClock(epoch)
	_, b := newPair(t, clock)
	b.dev.setUnderLoad(true)
	msg := floodInitiation(t, b.key.PublicKey())
	from := netip.MustParseAddrPort("198.19.0.1:40000")
	const n = 50
	for range n {
		if err := b.bind.Inject(msg, from); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the flood handled", func() bool {
		st := b.dev.Snapshot()
		return st.CookieRepliesSent+st.Drops[DropRateLimited] == n
	})
	// wireguard-go's ratelimiter allows a burst of 5 and 20 per second,
	// by the system clock: a few more may pass if the handling was slow.
	if got := b.dev.Snapshot().CookieRepliesSent; got < 5 || got >= n/2 {
		t.Errorf("one source got %d cookie replies for %d initiations, want the per-source burst (5, plus what 20/s refilled)", got, n)
	}
}

func TestTokenBucket(t *testing.T) {
	b := newTokenBucket(10, 2)
	now := epoch
	for i, want := range []bool{true, true, false} {
		if got := b.take(now); got != want {
			t.Fatalf("take %d at once: got %v, want %v", i, got, want)
		}
	}
	takes := func() (n int) {
		for b.take(now) {
			n++
		}
		return n
	}
	now = now.Add(100e6) // 0.1 s: one token at 10/s
	if got := takes(); got != 1 {
		t.Fatalf("after 0.1 s at 10/s: got %d takes, want 1", got)
	}
	now = now.Add(10e9) // refills only up to the burst
	if got := takes(); got != 2 {
		t.Fatalf("after 10 s: got %d takes, want the burst of 2", got)
	}
}
