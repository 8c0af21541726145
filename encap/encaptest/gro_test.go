package encaptest

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/overlay-node/overlay-node/encap"
)

// sized returns one datagram per size, each filled with its own index + 1, so
// that a datagram cut at the wrong place does not match.
func sized(sizes ...int) [][]byte {
	out := make([][]byte, len(sizes))
	for i, n := range sizes {
		out[i] = bytes.Repeat([]byte{byte(i + 1)}, n)
	}
	return out
}

// repeat returns n copies of size, for sized.
func repeat(n, size int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = size
	}
	return out
}

// TestGRO sends datagrams of the given sizes in one Send and checks how they
// are grouped into messages: want lists the datagram sizes of each message.
// Every case receives with batches of msgs messages and expects each call to
// fill as many as are left, since everything is already queued.
func TestGRO(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sizes   []int
		bufSize int
		msgs    int
		want    [][]int
	}{
		{"equal sizes", repeat(10, 100), encap.MaxSegmentSize, 8,
			[][]int{repeat(10, 100)}},
		{"single", []int{100}, encap.MaxSegmentSize, 8,
			[][]int{{100}}},
		{"shorter last ends the train", []int{100, 100, 60, 100, 100}, encap.MaxSegmentSize, 8,
			[][]int{{100, 100, 60}, {100, 100}}},
		{"only the last may be shorter", []int{100, 60, 60}, encap.MaxSegmentSize, 8,
			[][]int{{100, 60}, {60}}},
		{"longer starts a new message", []int{60, 60, 100, 100}, encap.MaxSegmentSize, 8,
			[][]int{{60, 60}, {100, 100}}},
		{"empty neither starts nor joins", []int{10, 0, 10, 10, 0, 0}, encap.MaxSegmentSize, 8,
			[][]int{{10}, {0}, {10, 10}, {0}, {0}}},
		{"segment limit", repeat(encap.BatchSize, 10), encap.MaxSegmentSize, 8,
			[][]int{repeat(encap.MaxGSOSegments, 10), repeat(encap.BatchSize-encap.MaxGSOSegments, 10)}},
		{"one past the segment limit", repeat(encap.MaxGSOSegments+1, 10), encap.MaxSegmentSize, 8,
			[][]int{repeat(encap.MaxGSOSegments, 10), {10}}},
		{"buffer limit", repeat(5, 300), 1000, 8,
			[][]int{{300, 300, 300}, {300, 300}}},
		{"buffer exactly full", repeat(5, 250), 1000, 8,
			[][]int{{250, 250, 250, 250}, {250}}},
		{"shorter last that does not fit", []int{300, 300, 300, 200}, 1000, 8,
			[][]int{{300, 300, 300}, {200}}},
		{"full MaxSegmentSize trains", repeat(4, 20000), encap.MaxSegmentSize, 8,
			[][]int{{20000, 20000, 20000}, {20000}}},
		// One message per call: the datagram that ended a train must wait
		// for the next call, not be lost or reordered.
		{"one message per call", []int{100, 100, 60, 100, 200, 200}, encap.MaxSegmentSize, 1,
			[][]int{{100, 100, 60}, {100}, {200, 200}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, _, rb := open(t)
			sent := sized(tc.sizes...)
			if err := a.Send(sent, b.Addr()); err != nil {
				t.Fatal(err)
			}
			// The marker joins no train, having another source, and
			// ends the loop below even if datagrams went missing.
			marker := netip.MustParseAddrPort("192.0.2.1:1")
			if err := b.Inject([]byte("end"), marker); err != nil {
				t.Fatal(err)
			}
			bt := newBatch(tc.msgs, tc.bufSize)
			var (
				got  [][]int
				next int // index in sent of the next datagram expected
			)
			for calls, done := 1, false; !done; calls++ {
				n := bt.recv(t, rb)
				if want := min(tc.msgs, len(tc.want)+1-len(got)); n != want {
					t.Errorf("call %d filled %d messages, want %d", calls, n, want)
				}
				for _, m := range bt.msgs[:n] {
					if m.From == marker {
						done = true
						continue
					}
					if m.From != a.Addr() {
						t.Errorf("message %d from %v, want %v", len(got), m.From, a.Addr())
					}
					ds := (&batch{msgs: []encap.Message{m}}).split(t, 1)
					sizes := make([]int, len(ds))
					for i, d := range ds {
						sizes[i] = len(d.data)
						if next < len(sent) && d.data != string(sent[next]) {
							t.Errorf("datagram %d arrived as %d bytes, want %d bytes of %d",
								next, len(d.data), len(sent[next]), next+1)
						}
						next++
					}
					if len(ds) > 1 && m.Seg != sizes[0] {
						t.Errorf("message %d: Seg = %d, want %d", len(got), m.Seg, sizes[0])
					}
					got = append(got, sizes)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("messages carry datagrams of sizes %v, want %v", got, tc.want)
			}
			if st := b.Stats(); st.Received != uint64(len(sent))+1 {
				t.Errorf("Received = %d, want %d datagrams and the marker", st.Received, len(sent))
			}
		})
	}
}

// TestGROSources checks that a train holds datagrams from one source only.
func TestGROSources(t *testing.T) {
	a, b, _, rb := open(t)
	stranger := netip.MustParseAddrPort("192.0.2.9:4000")
	if err := a.Send(pkts(3), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if err := b.Inject([]byte("datagram 999"), stranger); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(pkts(2), b.Addr()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(8, encap.MaxSegmentSize)
	if n := bt.recv(t, rb); n != 3 {
		t.Fatalf("received %d messages, want 3", n)
	}
	for i, want := range []struct {
		from  netip.AddrPort
		count int
	}{{a.Addr(), 3}, {stranger, 1}, {a.Addr(), 2}} {
		m := bt.msgs[i]
		if m.From != want.from || len(m.Buf) != 12*want.count {
			t.Errorf("message %d: %d bytes from %v, want %d datagrams from %v", i, len(m.Buf), m.From, want.count, want.from)
		}
	}
}

// TestGROOff checks that SetGRO(false) gives one datagram per message and
// SetGRO(true) brings trains back.
func TestGROOff(t *testing.T) {
	a, b, _, rb := open(t)
	b.SetGRO(false)
	sent := pkts(10)
	if err := a.Send(sent, b.Addr()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(16, encap.MaxSegmentSize)
	if n := bt.recv(t, rb); n != len(sent) {
		t.Fatalf("received %d messages without GRO, want %d", n, len(sent))
	}
	for i, m := range bt.msgs[:len(sent)] {
		if m.Seg != 0 || string(m.Buf) != string(sent[i]) {
			t.Errorf("message %d = %q with Seg %d, want %q with Seg 0", i, m.Buf, m.Seg, sent[i])
		}
	}

	b.SetGRO(true)
	if err := a.Send(sent, b.Addr()); err != nil {
		t.Fatal(err)
	}
	if n := bt.recv(t, rb); n != 1 || bt.msgs[0].Seg != len(sent[0]) {
		t.Errorf("received %d messages, the first with Seg %d, after SetGRO(true); want 1 with Seg %d",
			n, bt.msgs[0].Seg, len(sent[0]))
	}
	if got := b.Stats().Received; got != 2*uint64(len(sent)) {
		t.Errorf("Received = %d, want %d", got, 2*len(sent))
	}
}

// TestGRODoesNotWait checks that a receive returns what is queued rather
// than waiting for a train to fill, and that a later Send starts a new one.
func TestGRODoesNotWait(t *testing.T) {
	a, b, _, rb := open(t)
	bt := newBatch(8, encap.MaxSegmentSize)
	for round := range 3 {
		if err := a.Send(pkts(2), b.Addr()); err != nil {
			t.Fatal(err)
		}
		if n := bt.recv(t, rb); n != 1 || len(bt.msgs[0].Buf) != 24 || bt.msgs[0].Seg != 12 {
			t.Errorf("round %d: %d messages, the first %d bytes with Seg %d; want 1 of 24 with Seg 12",
				round, n, len(bt.msgs[0].Buf), bt.msgs[0].Seg)
		}
	}
}
