package conntrack

import (
	"sync/atomic"
	"testing"

	"github.com/overlay-node/overlay-node/packet"
)

// outOnly is outboundOnly without the recording, so it does not allocate.
var outOnly = admitFunc(func(_ packet.Packet, dir Direction) (int, bool) { return 0, dir == Out })

// parsedFlows parses n distinct outbound flows and their replies.
func parsedFlows(tb testing.TB, n int) (out, back []packet.Packet) {
	out, back = make([]packet.Packet, n), make([]packet.Packet, n)
	for i := range n {
		f := flowN(i)
		out[i], _ = f.parsed(tb)
		back[i], _ = udp(f.dst, f.src, f.dport, f.sport).parsed(tb)
	}
	return out, back
}

func TestNoAllocs(t *testing.T) {
	tb := New(0, outOnly)
	out, back := parsedFlows(t, 1)
	tb.Check(&out[0], nil, Out, 0)
	errPkt, errBytes := unreachable(b4, a4, flowN(0)).parsed(t)

	// A small table cycled through many flows: every packet opens a flow
	// and evicts one.
	small := New(64, outOnly)
	many, _ := parsedFlows(t, 4096)
	var now int64
	for i := range many {
		small.Check(&many[i], nil, Out, now)
	}
	next := 0

	ack, _ := tcp(b4, a4, 1, 2, packet.TCPFlagACK).parsed(t)
	inbound, _ := udp(b4, a4, 7, 7).parsed(t)
	first, _ := udp(a4, b4, 1, 2).frag(0, true, 1).parsed(t)
	rest, _ := udp(a4, b4, 1, 2).frag(8, false, 1).parsed(t)
	stray, _ := udp(a4, b4, 1, 2).frag(8, false, 2).parsed(t)
	fragTable := New(0, outOnly)
	fragTable.Check(&first, nil, Out, now)
	tests := []struct {
		name string
		want Verdict
		f    func() Verdict
	}{
		{"established", PassEstablished, func() Verdict { v, _ := tb.Check(&out[0], nil, Out, now); return v }},
		{"reply", PassEstablished, func() Verdict { v, _ := tb.Check(&back[0], nil, In, now); return v }},
		{"new flow with eviction", PassNew, func() Verdict {
			v, _ := small.Check(&many[next], nil, Out, now)
			next = (next + 1) % len(many)
			return v
		}},
		{"denied by policy", DenyPolicy, func() Verdict { v, _ := tb.Check(&inbound, nil, In, now); return v }},
		{"denied tcp without syn", DenyTCPNotSYN, func() Verdict { v, _ := tb.Check(&ack, nil, In, now); return v }},
		{"icmp error", PassRelated, func() Verdict { v, _ := tb.Check(&errPkt, errBytes, In, now); return v }},
		{"first fragment", PassEstablished, func() Verdict { v, _ := fragTable.Check(&first, nil, Out, now); return v }},
		{"fragment", PassFragment, func() Verdict { v, _ := fragTable.Check(&rest, nil, Out, now); return v }},
		{"stray fragment", DenyFragment, func() Verdict { v, _ := fragTable.Check(&stray, nil, Out, now); return v }},
	}
	for _, tt := range tests {
		var got Verdict
		if n := testing.AllocsPerRun(1000, func() { got = tt.f() }); n != 0 {
			t.Errorf("%s: got %v allocations, want 0", tt.name, n)
		}
		if got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	// A reload allocates its generation; the re-check at the next packet adds nothing.
	reload := testing.AllocsPerRun(1000, func() { tb.SetAdmitter(outOnly) })
	recheck := testing.AllocsPerRun(1000, func() {
		tb.SetAdmitter(outOnly)
		if v, _ := tb.Check(&back[0], nil, In, now); v != PassEstablished {
			t.Fatalf("re-checked reply: got %v, want established", v)
		}
	})
	if recheck != reload {
		t.Errorf("re-check: got %v allocations with the reload's %v, want none more", recheck, reload)
	}
	if small.Stats().Evictions == 0 {
		t.Errorf("the small table evicted nothing")
	}
}

func BenchmarkEstablished(b *testing.B) {
	tb := New(0, outOnly)
	out, _ := parsedFlows(b, 1)
	tb.Check(&out[0], nil, Out, 0)
	b.ReportAllocs()
	for b.Loop() {
		tb.Check(&out[0], nil, Out, 1)
	}
}

// BenchmarkEstablishedMany cycles through 16384 flows, so most lookups miss the CPU cache.
func BenchmarkEstablishedMany(b *testing.B) {
	tb := New(0, outOnly)
	out, _ := parsedFlows(b, 16384)
	for i := range out {
		tb.Check(&out[i], nil, Out, 0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Check(&out[i], nil, Out, 1)
		i = (i + 1) & (len(out) - 1)
	}
}

// BenchmarkNewFlow opens a flow per packet in a full table, evicting one.
func BenchmarkNewFlow(b *testing.B) {
	tb := New(4096, outOnly)
	out, _ := parsedFlows(b, 8192)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.Check(&out[i], nil, Out, 1)
		i = (i + 1) & (len(out) - 1)
	}
	if tb.Stats().Evictions == 0 && b.N > len(out) {
		b.Fatal("no evictions")
	}
}

// BenchmarkParallel has half the goroutines send on 1024 flows (Out) and
// half answer them (In), to show the cost of the shard locks under
// contention.
func BenchmarkParallel(b *testing.B) {
	tb := New(0, outOnly)
	out, back := parsedFlows(b, 1024)
	for i := range out {
		tb.Check(&out[i], nil, Out, 0)
	}
	var goroutines atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		pkts, dir := out, Out
		if goroutines.Add(1)%2 == 0 {
			pkts, dir = back, In
		}
		i := 0
		for pb.Next() {
			if v, _ := tb.Check(&pkts[i], nil, dir, 1); v != PassEstablished {
				b.Errorf("got %v, want established", v)
				return
			}
			i = (i + 1) & (len(pkts) - 1)
		}
	})
}
