package conntrack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/packet"
)

// flowN is the n-th of many distinct outbound UDP flows.
func flowN(n int) pk {
	dst := netip.AddrFrom4([4]byte{10, 1, byte(n >> 16), byte(n >> 8)})
	return udp(a4, dst, uint16(n), 53)
}

// tracked reports whether the flow of p in direction dir has a live entry,
// without touching it.
func (t *Table) tracked(p *packet.Packet, dir Direction, now int64) bool {
	var k key
	k.setFlow(p, dir)
	h := t.seed.hash(&k)
	s := t.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.flows.find(&k, h)
	return i >= 0 && s.flows.entries[i].expires > now
}

func TestEviction(t *testing.T) {
	for _, limit := range []int{1000, 5000} {
		t.Run("", func(t *testing.T) {
			tb := newSeeded(limit, allowAll(), 1)
			n := 5 * limit
			keep, _ := flowN(0).parsed(t) // kept busy: least recently used is not oldest
			var now int64
			for i := range n {
				now += int64(time.Millisecond)
				p, b := flowN(i).parsed(t)
				if v, _ := tb.Check(&p, b, Out, now); v != PassNew && !(i == 0 && v == PassEstablished) {
					t.Fatalf("flow %d: got %v, want new", i, v)
				}
				if i%50 == 0 {
					if v, _ := tb.Check(&keep, nil, Out, now); v != PassEstablished {
						t.Fatalf("busy flow at %d: got %v, want established", i, v)
					}
				}
				if e := tb.Stats().Entries; e > limit {
					t.Fatalf("after %d flows: %d entries, more than max %d", i+1, e, limit)
				}
			}
			st := tb.Stats()
			if st.Entries != limit {
				t.Errorf("entries: got %d, want %d (every shard full)", st.Entries, limit)
			}
			if st.Evictions != uint64(n-limit) || st.Expired != 0 {
				t.Errorf("evictions, expired: got %d, %d, want %d, 0", st.Evictions, st.Expired, n-limit)
			}
			// Within each shard, every flow kept is newer than every flow evicted.
			newestGone := make(map[*shard]int)
			oldestKept := make(map[*shard]int)
			kept := 0
			for i := 1; i < n; i++ {
				p, _ := flowN(i).parsed(t)
				var k key
				k.setFlow(&p, Out)
				s := tb.shardOf(tb.seed.hash(&k))
				if tb.tracked(&p, Out, now) {
					kept++
					if _, ok := oldestKept[s]; !ok {
						oldestKept[s] = i
					}
				} else {
					newestGone[s] = i
				}
			}
			for s, gone := range newestGone {
				if kept, ok := oldestKept[s]; ok && kept < gone {
					t.Errorf("a shard kept flow %d but evicted the newer flow %d", kept, gone)
				}
			}
			if !tb.tracked(&keep, Out, now) {
				t.Errorf("the busy oldest flow was evicted")
			}
			if kept+1 != limit {
				t.Errorf("kept: got %d flows, want %d", kept+1, limit)
			}
			p, b := flowN(n).parsed(t)
			if v, _ := tb.Check(&p, b, Out, now); v != PassNew {
				t.Errorf("a new flow when full: got %v, want new", v)
			}
		})
	}
}

func TestExpiredMakeRoomUncounted(t *testing.T) {
	tb := newSeeded(1, allowAll(), 1)
	p, b := flowN(1).parsed(t)
	tb.Check(&p, b, Out, 0)
	q, qb := flowN(2).parsed(t)
	if v, _ := tb.Check(&q, qb, Out, int64(UDPTimeout)); v != PassNew {
		t.Fatalf("got %v, want new", v)
	}
	if st := tb.Stats(); st.Evictions != 0 || st.Expired != 1 || st.Entries != 1 {
		t.Errorf("got evictions %d expired %d entries %d, want 0 1 1", st.Evictions, st.Expired, st.Entries)
	}
}

func TestSweepReapsIdleFlows(t *testing.T) {
	tb := newSeeded(64, allowAll(), 1) // 16 shards of 4
	for i := range 64 {
		p, b := flowN(i).parsed(t)
		tb.Check(&p, b, Out, 0)
	}
	if e := tb.Stats().Entries; e == 0 {
		t.Fatal("no entries to sweep")
	}
	// Traffic to one established flow, long after the others expired,
	// sweeps its shard bit by bit; no lookup of the others is needed.
	now := int64(UDPTimeout) + 1
	fresh, b := udp(a4, b4, 9, 9).parsed(t)
	tb.Check(&fresh, b, Out, now-1)
	before := tb.Stats().Entries
	for range sweepEvery * 8 {
		tb.Check(&fresh, b, Out, now)
	}
	if st := tb.Stats(); st.Entries >= before || st.Expired == 0 {
		t.Errorf("entries %d → %d, expired %d: the sweep removed nothing", before, st.Entries, st.Expired)
	}
}

func TestFragmentsBounded(t *testing.T) {
	tb := newSeeded(MaxFragments, allowAll(), 1)
	const n = MaxFragments + 100
	for i := range n {
		p, b := udp(a4, b4, 1, 2).frag(0, true, uint32(i)).parsed(t)
		tb.Check(&p, b, Out, 0)
	}
	st := tb.Stats()
	if st.Fragments > MaxFragments || st.Fragments+int(st.FragmentEvictions) != n || st.FragmentEvictions < 100 {
		t.Errorf("fragments %d, evictions %d: want at most %d, adding up to %d", st.Fragments, st.FragmentEvictions, MaxFragments, n)
	}
	passed := 0
	for i := range n {
		p, b := udp(a4, b4, 1, 2).frag(8, false, uint32(i)).parsed(t)
		if v, _ := tb.Check(&p, b, Out, 0); v == PassFragment {
			passed++
		} else if i >= n-50 {
			t.Errorf("datagram %d, among the newest: got %v, want fragment", i, v)
		}
	}
	if passed != st.Fragments {
		t.Errorf("rest of datagram passed for %d, want %d (those remembered)", passed, st.Fragments)
	}
	if small := newSeeded(10, allowAll(), 1); small.shards[0].frags.entries == nil || len(small.shards[0].frags.entries) > 10 {
		t.Errorf("a 10-flow table remembers %d datagrams per shard, want at most 10", len(small.shards[0].frags.entries))
	}
}
