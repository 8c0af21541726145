package encap

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type received struct {
	data []byte
	from netip.AddrPort
}

// receiveAll runs every ReceiveFunc the way the engine does, with BatchSize
// messages of MaxSegmentSize, splits GRO trains back into datagrams, and
// forwards each until the bind is closed. trains counts messages that
// carried more than one datagram.
func receiveAll(t *testing.T, fns []ReceiveFunc, out chan<- received, trains *int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, fn := range fns {
		wg.Go(func() {
			msgs := make([]Message, BatchSize)
			for i := range msgs {
				msgs[i].Buf = make([]byte, MaxSegmentSize)
			}
			for {
				for i := range msgs {
					msgs[i].Buf = msgs[i].Buf[:cap(msgs[i].Buf)]
				}
				n, err := fn(msgs)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("receive: %v", err)
					}
					return
				}
				for _, m := range msgs[:n] {
					seg := m.SegmentSize()
					if seg < len(m.Buf) {
						mu.Lock()
						*trains++
						mu.Unlock()
					}
					for off := 0; off < len(m.Buf); off += seg {
						out <- received{bytes.Clone(m.Buf[off:min(off+seg, len(m.Buf))]), m.From}
					}
				}
			}
		})
	}
	return &wg
}

// transportBatch returns n transport messages numbered by their counter:
// runs of equal size with a shorter tail (the shape GSO coalesces), then a
// size change, so a batch needs several trains.
func transportBatch(n int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		size := 1452
		switch {
		case i == n/2-1:
			size = 700 // ends the first train early
		case i >= n/2:
			size = 1200
		}
		if i == n-1 {
			size = TransportMinSize
		}
		bufs[i] = make([]byte, size)
		pattern(bufs[i][TransportHeaderSize:], byte(i))
		PutTransportHeader(bufs[i], 0xcafe, uint64(i))
	}
	return bufs
}

// TestNewBindLoopback sends batches of transport messages between two real
// binds over loopback and checks that every datagram arrives intact, in
// order, from the sender's port, and that UDP GSO and GRO really carried
// trains (loopback hands a GSO train to a GRO socket whole). It needs no
// privileges.
func TestNewBindLoopback(t *testing.T) {
	for _, ip := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
		t.Run(ip.String(), func(t *testing.T) {
			a, b := NewBind(), NewBind()
			_, portA, err := a.Open(0)
			if err != nil {
				t.Fatalf("open a: %v", err)
			}
			defer a.Close()
			fnsB, portB, err := b.Open(0)
			if err != nil {
				t.Fatalf("open b: %v", err)
			}
			if b.BatchSize() != BatchSize {
				t.Errorf("BatchSize() = %d, want %d", b.BatchSize(), BatchSize)
			}
			out := make(chan received, 4*BatchSize)
			var trains int64
			wg := receiveAll(t, fnsB, out, &trains)
			defer func() {
				b.Close()
				wg.Wait()
			}()

			const rounds = 3
			n := BatchSize
			want := transportBatch(n)
			for range rounds {
				bufs := make([][]byte, n)
				for i := range want {
					bufs[i] = bytes.Clone(want[i])
				}
				if err := a.Send(bufs, netip.AddrPortFrom(ip, portB)); err != nil {
					if ip.Is6() {
						t.Skipf("send over %s loopback: %v", ip, err)
					}
					t.Fatalf("send: %v", err)
				}
			}
			from := netip.AddrPortFrom(ip, portA)
			timeout := time.After(10 * time.Second)
			for seen := 0; seen < rounds*n; seen++ {
				select {
				case r := <-out:
					if r.from != from {
						t.Errorf("datagram from %s, want %s", r.from, from)
					}
					if i := seen % n; !bytes.Equal(r.data, want[i]) {
						t.Fatalf("datagram %d: got %d bytes %x..., want %d bytes %x...", seen, len(r.data),
							r.data[:min(len(r.data), TransportMinSize)], len(want[i]), want[i][:TransportMinSize])
					}
				case <-timeout:
					t.Fatalf("received %d of %d datagrams before the timeout", seen, rounds*n)
				}
			}
			select {
			case r := <-out:
				t.Errorf("an extra datagram of %d bytes", len(r.data))
			case <-time.After(50 * time.Millisecond):
			}
			if trains == 0 {
				t.Errorf("no datagrams arrived as a GRO train: GSO or GRO is off")
			}
		})
	}
}

// TestNewBindClose checks the part of the contract the engine's shutdown
// relies on: Close unblocks every ReceiveFunc with net.ErrClosed, and the
// bind can be opened again.
func TestNewBindClose(t *testing.T) {
	b := NewBind()
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(fns))
	for _, fn := range fns {
		go func() {
			msgs := make([]Message, b.BatchSize())
			for i := range msgs {
				msgs[i].Buf = make([]byte, MaxSegmentSize)
			}
			_, err := fn(msgs)
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond) // let the reads block
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range fns {
		select {
		case err := <-errs:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("receive after Close returned %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("receive still blocked 5s after Close")
		}
	}
	if err := b.Send([][]byte{make([]byte, TransportMinSize)}, netip.MustParseAddrPort("127.0.0.1:9")); err == nil {
		t.Error("Send on a closed bind succeeded")
	}
	if _, _, err := b.Open(0); err != nil {
		t.Errorf("Open after Close: %v", err)
	}
	b.Close()
}

// TestNewBindNoAllocs holds both directions of the real bind to zero
// allocations per batch.
func TestNewBindNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	a, b := NewBind(), NewBind()
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fns, portB, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), portB)
	pkts := transportBatch(16)
	msgs := make([]Message, BatchSize)
	for i := range msgs {
		msgs[i].Buf = make([]byte, MaxSegmentSize)
	}
	got := 0
	allocs := testing.AllocsPerRun(100, func() {
		if err := a.Send(pkts, to); err != nil {
			t.Fatal(err)
		}
		for want := got + len(pkts); got < want; {
			for i := range msgs {
				msgs[i].Buf = msgs[i].Buf[:cap(msgs[i].Buf)]
			}
			n, err := fns[0](msgs)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs[:n] {
				seg := m.SegmentSize()
				got += (len(m.Buf) + seg - 1) / seg
			}
		}
	})
	if allocs != 0 {
		t.Errorf("a batch sent and received allocated %.1f times, want 0", allocs)
	}
}

// TestGROSegment parses control buffers laid out as the kernel lays them.
func TestGROSegment(t *testing.T) {
	cmsg := func(level, typ int32, value uint32) []byte {
		b := make([]byte, unix.CmsgSpace(4))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(unix.CmsgLen(4))
		*(*uint32)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = value
		return b
	}
	gro := cmsg(unix.SOL_UDP, unix.UDP_GRO, 1452)
	other := cmsg(unix.SOL_IP, unix.IP_TOS, 7)
	broken := cmsg(unix.SOL_UDP, unix.UDP_GRO, 1452)
	(*unix.Cmsghdr)(unsafe.Pointer(&broken[0])).SetLen(1 << 20)
	for _, tc := range []struct {
		name string
		ctrl []byte
		want int
	}{
		{"none", nil, 0},
		{"truncated header", make([]byte, 3), 0},
		{"gro", gro, 1452},
		{"after another message", append(bytes.Clone(other), gro...), 1452},
		{"only another message", other, 0},
		{"length past the buffer", broken, 0},
	} {
		if got := groSegment(tc.ctrl); got != tc.want {
			t.Errorf("%s: segment %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestNewBindPort: both sockets take the port asked for, and a port the
// bind already holds cannot be taken twice.
func TestNewBindPort(t *testing.T) {
	b := NewBind()
	_, port, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	fns, got, err := b.Open(port)
	if err != nil {
		t.Fatalf("reopen on port %d: %v", port, err)
	}
	defer b.Close()
	if got != port {
		t.Errorf("bound port %d, want %d", got, port)
	}
	if len(fns) == 0 {
		t.Fatal("no receive functions")
	}
	if _, _, err := NewBind().Open(port); err == nil {
		t.Errorf("a second bind took port %d too", port)
	}
}
