package tundev

import "testing"

// benchRuns are the batches the offload benchmarks coalesce and split: a
// TCP stream at full MTU in each family, and small UDP datagrams.
var benchRuns = []struct {
	name string
	udp  bool
	in   func() []groPkt
}{
	{"tcp4", false, func() []groPkt { return tcpRun(false, 1, 0, 44, 1448) }},
	{"tcp6", false, func() []groPkt { return tcpRun(true, 1, 0, 44, 1428) }},
	{"udp4", true, func() []groPkt {
		var out []groPkt
		for i := range 64 {
			out = append(out, groPkt{udp: true, sport: 9000, payload: 200, fill: byte(i)})
		}
		return out
	}},
}

// BenchmarkCoalesce measures GRO over one TUN write batch of one flow,
// the payload copy included.
func BenchmarkCoalesce(b *testing.B) {
	for _, r := range benchRuns {
		b.Run(r.name, func(b *testing.B) {
			in := r.in()
			orig := make([][]byte, len(in))
			bufs := make([][]byte, len(in))
			total := 0
			for i, p := range in {
				orig[i] = p.build()
				bufs[i] = make([]byte, BufferSize)
				total += len(orig[i]) - HeaderRoom
			}
			g := groBatch{udp: r.udp}
			b.SetBytes(int64(total))
			b.ReportAllocs()
			for b.Loop() {
				for i := range orig { // coalescing rewrites the heads
					bufs[i] = bufs[i][:copy(bufs[i][:cap(bufs[i])], orig[i])]
				}
				g.coalesce(bufs)
				if len(g.out) != 1 {
					b.Fatalf("%d packets written, want 1", len(g.out))
				}
			}
		})
	}
}

// BenchmarkSplitGSO measures GSO of one super-packet as the TUN reads it.
func BenchmarkSplitGSO(b *testing.B) {
	for _, r := range benchRuns {
		b.Run(r.name, func(b *testing.B) {
			in := r.in()
			var src [][]byte
			for _, p := range in {
				src = append(src, p.build())
			}
			g := groBatch{udp: r.udp}
			g.coalesce(src)
			super, h := g.out[0], g.hdrs[0]
			size := len(super) - HeaderRoom
			bufs := make([][]byte, len(in))
			for i := range bufs {
				bufs[i] = make([]byte, BufferSize)
			}
			sizes := make([]int, len(bufs))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				copy(bufs[0], super) // splitting rewrites the head
				if n, err := splitGSO(bufs, sizes, size, h); n != len(in) || err != nil {
					b.Fatalf("split into %d, %v; want %d", n, err, len(in))
				}
			}
		})
	}
}
