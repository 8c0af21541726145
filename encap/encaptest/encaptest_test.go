package encaptest

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// open opens both sides on their default ports and closes them at the end.
func open(t *testing.T) (a, b *Bind, ra, rb conn.ReceiveFunc) {
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

// batch is a receive batch of n buffers, as the engine allocates one.
type batch struct {
	bufs  [][]byte
	sizes []int
	eps   []conn.Endpoint
}

func newBatch(n, size int) *batch {
	bt := &batch{bufs: make([][]byte, n), sizes: make([]int, n), eps: make([]conn.Endpoint, n)}
	for i := range bt.bufs {
		bt.bufs[i] = make([]byte, size)
	}
	return bt
}

func (bt *batch) recv(t *testing.T, fn conn.ReceiveFunc) int {
	t.Helper()
	n, err := fn(bt.bufs, bt.sizes, bt.eps)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return n
}

func (bt *batch) pkt(i int) []byte { return bt.bufs[i][:bt.sizes[i]] }

func pkts(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("datagram %03d", i))
	}
	return out
}

func TestSendReceiveBatch(t *testing.T) {
	a, b, ra, rb := open(t)
	if got, want := a.Addr(), netip.MustParseAddrPort("127.0.0.1:51820"); got != want {
		t.Errorf("a.Addr() = %v, want %v", got, want)
	}
	if got, want := b.Addr(), netip.MustParseAddrPort("127.0.0.2:51820"); got != want {
		t.Errorf("b.Addr() = %v, want %v", got, want)
	}

	sent := pkts(50)
	if err := a.Send(sent, b.Endpoint()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(a.BatchSize(), 1500)
	if n := bt.recv(t, rb); n != len(sent) {
		t.Fatalf("received %d datagrams in one batch, want %d", n, len(sent))
	}
	for i, p := range sent {
		if !bytes.Equal(bt.pkt(i), p) {
			t.Errorf("datagram %d = %q, want %q", i, bt.pkt(i), p)
		}
		if bt.eps[i] != a.Endpoint() {
			t.Errorf("datagram %d from %v, want %v", i, bt.eps[i], a.Endpoint())
		}
	}

	// And back, to the endpoint the receiver learned, in smaller batches.
	if err := b.Send(sent, bt.eps[0]); err != nil {
		t.Fatal(err)
	}
	small := newBatch(16, 1500)
	for got := 0; got < len(sent); {
		n := small.recv(t, ra)
		if n > 16 {
			t.Fatalf("received %d datagrams into 16 buffers", n)
		}
		for i := range n {
			if !bytes.Equal(small.pkt(i), sent[got+i]) {
				t.Errorf("datagram %d = %q, want %q", got+i, small.pkt(i), sent[got+i])
			}
		}
		got += n
	}

	if got, want := a.Stats(), (Stats{Sent: 50, Received: 50}); got != want {
		t.Errorf("a.Stats() = %+v, want %+v", got, want)
	}
	if got, want := b.Stats(), (Stats{Sent: 50, Received: 50}); got != want {
		t.Errorf("b.Stats() = %+v, want %+v", got, want)
	}
}

func TestSendCopies(t *testing.T) {
	a, b, _, rb := open(t)
	p := []byte("original")
	if err := a.Send([][]byte{p}, b.Endpoint()); err != nil {
		t.Fatal(err)
	}
	copy(p, "mutated!") // the engine reuses its buffers as soon as Send returns
	bt := newBatch(1, 1500)
	bt.recv(t, rb)
	if got := string(bt.pkt(0)); got != "original" {
		t.Errorf("received %q, want %q", got, "original")
	}
}

func TestTruncation(t *testing.T) {
	a, b, _, rb := open(t)
	if err := a.Send([][]byte{[]byte("0123456789")}, b.Endpoint()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(1, 4)
	bt.recv(t, rb)
	if got := string(bt.pkt(0)); got != "0123" {
		t.Errorf("received %q into a 4-byte buffer, want %q", got, "0123")
	}
}

func TestInject(t *testing.T) {
	a, b, _, rb := open(t)
	stranger := Endpoint{netip.MustParseAddrPort("[2001:db8::1]:9999")}
	if err := b.Inject([]byte("forged"), stranger); err != nil {
		t.Fatal(err)
	}
	if err := b.Inject([]byte("from peer"), nil); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(8, 1500)
	if n := bt.recv(t, rb); n != 2 {
		t.Fatalf("received %d datagrams, want 2", n)
	}
	if string(bt.pkt(0)) != "forged" || bt.eps[0] != stranger {
		t.Errorf("first datagram %q from %v, want %q from %v", bt.pkt(0), bt.eps[0], "forged", stranger)
	}
	if string(bt.pkt(1)) != "from peer" || bt.eps[1] != a.Endpoint() {
		t.Errorf("second datagram %q from %v, want %q from %v", bt.pkt(1), bt.eps[1], "from peer", a.Endpoint())
	}
	if got := b.Stats().Injected; got != 2 {
		t.Errorf("Injected = %d, want 2", got)
	}
}

// TestTapReplay is the pattern the engine's replay tests use: record a
// datagram as it leaves one side, deliver it, then inject the recording again.
func TestTapReplay(t *testing.T) {
	a, b, _, rb := open(t)
	type sent struct {
		pkt []byte
		to  conn.Endpoint
	}
	var (
		mu  sync.Mutex
		log []sent
	)
	a.SetTap(func(pkt []byte, to conn.Endpoint) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, sent{pkt, to})
	})
	p := []byte("transport message")
	if err := a.Send([][]byte{p}, b.Endpoint()); err != nil {
		t.Fatal(err)
	}
	p[0] = 'X' // the tap owns a copy
	a.SetTap(nil)
	if err := a.Send([][]byte{[]byte("untapped")}, b.Endpoint()); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(log) != 1 {
		t.Fatalf("tap saw %d datagrams, want 1", len(log))
	}
	if string(log[0].pkt) != "transport message" || log[0].to != b.Endpoint() {
		t.Errorf("tap saw %q to %v, want %q to %v", log[0].pkt, log[0].to, "transport message", b.Endpoint())
	}
	if err := b.Inject(log[0].pkt, a.Endpoint()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(8, 1500)
	if n := bt.recv(t, rb); n != 3 {
		t.Fatalf("received %d datagrams, want 3", n)
	}
	for i, want := range []string{"transport message", "untapped", "transport message"} {
		if string(bt.pkt(i)) != want {
			t.Errorf("datagram %d = %q, want %q", i, bt.pkt(i), want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	std := conn.NewStdNetBind()
	a, _ := NewPair()
	for _, s := range []string{"127.0.0.1:51820", "192.0.2.7:1", "[2001:db8::1]:65535"} {
		ours, err := a.ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := std.ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours.DstToBytes(), theirs.DstToBytes()) {
			t.Errorf("%s: DstToBytes = %x, want %x as the standard bind", s, ours.DstToBytes(), theirs.DstToBytes())
		}
		if ours.DstToString() != s || ours.DstIP() != theirs.DstIP() {
			t.Errorf("%s: DstToString, DstIP = %s, %v; want %s, %v", s, ours.DstToString(), ours.DstIP(), s, theirs.DstIP())
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
		recv conn.ReceiveFunc
	}{{a, b, rb}, {b, a, ra}} {
		wg.Go(func() {
			bt := newBatch(x.to.BatchSize(), 100)
			for counts[i] < senders*perSender {
				n, err := x.recv(bt.bufs, bt.sizes, bt.eps)
				if err != nil {
					t.Errorf("receive: %v", err)
					return
				}
				counts[i] += n
			}
		})
		for range senders {
			wg.Go(func() {
				for range perSender / burst {
					if err := x.from.Send(pkts(burst), x.to.Endpoint()); err != nil {
						t.Errorf("send: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	for i, x := range []*Bind{b, a} {
		if counts[i] != senders*perSender || x.Stats().Overflow != 0 {
			t.Errorf("side %d received %d with %d overflowing, want %d and 0", i, counts[i], x.Stats().Overflow, senders*perSender)
		}
	}
}
