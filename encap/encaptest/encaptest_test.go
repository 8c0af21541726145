package encaptest

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/overlay-node/overlay-node/encap"
)

// open opens both sides on their default ports and closes them at the end.
func open(t *testing.T) (a, b *Bind, ra, rb encap.ReceiveFunc) {
	t.Helper()
	a, b = NewPair()
	fa, _, err := a.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	fb, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(fa) != 1 || len(fb) != 1 {
		t.Fatalf("Open returned %d and %d ReceiveFuncs, want 1 each", len(fa), len(fb))
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b, fa[0], fb[0]
}

// batch is a receive batch of n messages, as the engine allocates one.
type batch struct {
	msgs []encap.Message
}

func newBatch(n, size int) *batch {
	bt := &batch{msgs: make([]encap.Message, n)}
	for i := range bt.msgs {
		bt.msgs[i].Buf = make([]byte, size)
	}
	return bt
}

// call restores every Buf to its full length, as the engine must, and
// receives one batch.
func (bt *batch) call(fn encap.ReceiveFunc) (int, error) {
	for i := range bt.msgs {
		bt.msgs[i].Buf = bt.msgs[i].Buf[:cap(bt.msgs[i].Buf)]
	}
	return fn(bt.msgs)
}

// recv receives one batch and returns how many messages it filled.
func (bt *batch) recv(t *testing.T, fn encap.ReceiveFunc) int {
	t.Helper()
	n, err := bt.call(fn)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	if n < 1 || n > len(bt.msgs) {
		t.Fatalf("receive filled %d of %d messages", n, len(bt.msgs))
	}
	return n
}

// dgram is one datagram cut back out of a received message.
type dgram struct {
	data string
	from netip.AddrPort
}

// split cuts msgs[:n] back into the datagrams they carry.
func (bt *batch) split(t *testing.T, n int) []dgram {
	t.Helper()
	var out []dgram
	for i, m := range bt.msgs[:n] {
		if m.Seg == 0 {
			out = append(out, dgram{string(m.Buf), m.From})
			continue
		}
		// A train holds at least two datagrams, so it is longer than one.
		if m.Seg < 0 || m.Seg >= len(m.Buf) {
			t.Errorf("message %d: Seg %d with %d bytes", i, m.Seg, len(m.Buf))
			out = append(out, dgram{string(m.Buf), m.From})
			continue
		}
		for p := m.Buf; len(p) > 0; {
			k := min(m.Seg, len(p))
			out = append(out, dgram{string(p[:k]), m.From})
			p = p[k:]
		}
	}
	return out
}

// datagrams receives one batch and returns the datagrams in it.
func (bt *batch) datagrams(t *testing.T, fn encap.ReceiveFunc) []dgram {
	t.Helper()
	return bt.split(t, bt.recv(t, fn))
}

func pkts(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("datagram %03d", i))
	}
	return out
}

func TestSendReceiveBatch(t *testing.T) {
	for _, gro := range []bool{true, false} {
		t.Run(fmt.Sprintf("gro=%v", gro), func(t *testing.T) {
			a, b, ra, rb := open(t)
			a.SetGRO(gro)
			b.SetGRO(gro)
			if got, want := a.Addr(), netip.MustParseAddrPort("127.0.0.1:51820"); got != want {
				t.Errorf("a.Addr() = %v, want %v", got, want)
			}
			if got, want := b.Addr(), netip.MustParseAddrPort("127.0.0.2:51820"); got != want {
				t.Errorf("b.Addr() = %v, want %v", got, want)
			}

			sent := pkts(50)
			if err := a.Send(sent, b.Addr()); err != nil {
				t.Fatal(err)
			}
			bt := newBatch(a.BatchSize(), encap.MaxSegmentSize)
			got := bt.datagrams(t, rb)
			if len(got) != len(sent) {
				t.Fatalf("received %d datagrams in one batch, want %d", len(got), len(sent))
			}
			for i, p := range sent {
				if got[i].data != string(p) || got[i].from != a.Addr() {
					t.Errorf("datagram %d = %q from %v, want %q from %v", i, got[i].data, got[i].from, p, a.Addr())
				}
			}

			// And back, to the address the receiver learned, in smaller batches.
			if err := b.Send(sent, got[0].from); err != nil {
				t.Fatal(err)
			}
			small := newBatch(16, encap.MaxSegmentSize)
			for got := 0; got < len(sent); {
				back := small.datagrams(t, ra)
				for i, d := range back {
					if got+i < len(sent) && d.data != string(sent[got+i]) {
						t.Errorf("datagram %d = %q, want %q", got+i, d.data, sent[got+i])
					}
				}
				got += len(back)
			}

			if got, want := a.Stats(), (Stats{Sent: 50, Received: 50}); got != want {
				t.Errorf("a.Stats() = %+v, want %+v", got, want)
			}
			if got, want := b.Stats(), (Stats{Sent: 50, Received: 50}); got != want {
				t.Errorf("b.Stats() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSendCopies(t *testing.T) {
	a, b, _, rb := open(t)
	p := []byte("original")
	if err := a.Send([][]byte{p}, b.Addr()); err != nil {
		t.Fatal(err)
	}
	copy(p, "mutated!") // the engine reuses its buffers as soon as Send returns
	bt := newBatch(1, encap.MaxSegmentSize)
	bt.recv(t, rb)
	if got := string(bt.msgs[0].Buf); got != "original" {
		t.Errorf("received %q, want %q", got, "original")
	}
}

// TestTruncation checks that a datagram longer than its buffer is cut to it,
// and that a cut datagram ends its message rather than starting a train.
func TestTruncation(t *testing.T) {
	a, b, _, rb := open(t)
	if err := a.Send([][]byte{[]byte("0123456789"), []byte("0123456789")}, b.Addr()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(2, 4)
	if n := bt.recv(t, rb); n != 2 {
		t.Fatalf("received %d messages, want 2", n)
	}
	for i, m := range bt.msgs {
		if string(m.Buf) != "0123" || m.Seg != 0 {
			t.Errorf("message %d = %q with Seg %d in a 4-byte buffer, want %q with Seg 0", i, m.Buf, m.Seg, "0123")
		}
	}
}

func TestInject(t *testing.T) {
	a, b, _, rb := open(t)
	stranger := netip.MustParseAddrPort("[2001:db8::1]:9999")
	if err := b.Inject([]byte("forged"), stranger); err != nil {
		t.Fatal(err)
	}
	if err := b.Inject([]byte("from peer"), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Inject([]byte("mapped"), netip.MustParseAddrPort("[::ffff:192.0.2.1]:7")); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(8, encap.MaxSegmentSize)
	got := bt.datagrams(t, rb)
	want := []dgram{
		{"forged", stranger},
		{"from peer", a.Addr()},
		{"mapped", netip.MustParseAddrPort("192.0.2.1:7")},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("received %v, want %v", got, want)
	}
	if !got[2].from.Addr().Is4() {
		t.Errorf("mapped source arrived as %v, want a 4-byte address", got[2].from)
	}
	if got := b.Stats().Injected; got != 3 {
		t.Errorf("Injected = %d, want 3", got)
	}
}

// TestTapReplay is the pattern the engine's replay tests use: record a
// datagram as it leaves one side, deliver it, then inject the recording again.
func TestTapReplay(t *testing.T) {
	a, b, _, rb := open(t)
	type sent struct {
		pkt []byte
		to  netip.AddrPort
	}
	var (
		mu  sync.Mutex
		log []sent
	)
	a.SetTap(func(pkt []byte, to netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, sent{pkt, to})
	})
	p := []byte("transport message")
	if err := a.Send([][]byte{p}, b.Addr()); err != nil {
		t.Fatal(err)
	}
	p[0] = 'X' // the tap owns a copy
	a.SetTap(nil)
	if err := a.Send([][]byte{[]byte("untapped")}, b.Addr()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(log) != 1 {
		t.Fatalf("tap saw %d datagrams, want 1", len(log))
	}
	if string(log[0].pkt) != "transport message" || log[0].to != b.Addr() {
		t.Errorf("tap saw %q to %v, want %q to %v", log[0].pkt, log[0].to, "transport message", b.Addr())
	}
	if err := b.Inject(log[0].pkt, a.Addr()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(8, encap.MaxSegmentSize)
	got := bt.datagrams(t, rb)
	if len(got) != 3 {
		t.Fatalf("received %d datagrams, want 3", len(got))
	}
	for i, want := range []string{"transport message", "untapped", "transport message"} {
		if got[i].data != want {
			t.Errorf("datagram %d = %q, want %q", i, got[i].data, want)
		}
	}
}

// TestConcurrent runs senders on both sides against receivers, for the race
// detector, and checks that every datagram is accounted for.
func TestConcurrent(t *testing.T) {
	a, b, ra, rb := open(t)
	const senders, perSender, burst = 4, 200, 8
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, x := range []struct {
		from *Bind
		to   *Bind
		recv encap.ReceiveFunc
	}{{a, b, rb}, {b, a, ra}} {
		wg.Go(func() {
			bt := newBatch(x.to.BatchSize(), encap.MaxSegmentSize)
			for counts[i] < senders*perSender {
				n, err := bt.call(x.recv)
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
				counts[i] += len(bt.split(t, n))
			}
		})
		for range senders {
			wg.Go(func() {
				for range perSender / burst {
					if err := x.from.Send(pkts(burst), x.to.Addr()); err != nil {
						t.Errorf("send: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for i, x := range []*Bind{b, a} {
		st := x.Stats()
		if counts[i] != senders*perSender || st.Received != senders*perSender || st.Overflow != 0 {
			t.Errorf("side %d received %d (Received %d) with %d overflowing, want %d and 0",
				i, counts[i], st.Received, st.Overflow, senders*perSender)
		}
	}
}
