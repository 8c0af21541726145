package encap

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

type received struct {
	data []byte
	from Endpoint
}

// receiveAll runs every ReceiveFunc the way the engine does, with exactly
// BatchSize buffers of MaxSegmentSize, and forwards each datagram until the
// bind is closed.
func receiveAll(t *testing.T, fns []ReceiveFunc, batch int, out chan<- received) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(func() {
			bufs := make([][]byte, batch)
			for i := range bufs {
				bufs[i] = make([]byte, MaxSegmentSize)
			}
			sizes := make([]int, batch)
			eps := make([]Endpoint, batch)
			for {
				n, err := fn(bufs, sizes, eps)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						t.Errorf("receive: %v", err)
					}
					return
				}
				for i := range n {
					if sizes[i] == 0 {
						continue
					}
					out <- received{bytes.Clone(bufs[i][:sizes[i]]), eps[i]}
				}
			}
		})
	}
	return &wg
}

// TestNewBindLoopback sends a batch of transport messages between two real
// binds over loopback, with whatever offloads the kernel has, and checks that
// every datagram arrives intact from the sender's port. It needs no
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
			if runtime.GOOS == "linux" && b.BatchSize() != BatchSize {
				t.Errorf("BatchSize() = %d, want %d on linux", b.BatchSize(), BatchSize)
			}

			out := make(chan received, 2*BatchSize)
			wg := receiveAll(t, fnsB, b.BatchSize(), out)
			defer func() {
				b.Close()
				wg.Wait()
			}()

			ep, err := a.ParseEndpoint(netip.AddrPortFrom(ip, portB).String())
			if err != nil {
				t.Fatal(err)
			}
			// Equal-size datagrams with a shorter tail, the shape GSO
			// coalesces; each buffer owns its spare capacity, as Bind asks.
			n := min(a.BatchSize(), 32)
			bufs := make([][]byte, n)
			for i := range bufs {
				size := 1452
				if i == n-1 {
					size = TransportMinSize
				}
				bufs[i] = make([]byte, size, MaxSegmentSize)
				pattern(bufs[i][TransportHeaderSize:], byte(i))
				PutTransportHeader(bufs[i], 0xcafe, uint64(i))
			}
			want := make([][]byte, n)
			for i := range bufs {
				want[i] = bytes.Clone(bufs[i])
			}
			if err := a.Send(bufs, ep); err != nil {
				t.Skipf("send over %s loopback: %v", ip, err)
			}

			got := make([][]byte, n)
			timeout := time.After(10 * time.Second)
			for seen := 0; seen < n; {
				select {
				case r := <-out:
					if r.from.DstIP() != ip || r.from.DstToString() != netip.AddrPortFrom(ip, portA).String() {
						t.Errorf("datagram from %s, want %s", r.from.DstToString(), netip.AddrPortFrom(ip, portA))
					}
					rcv, c, err := ParseTransportHeader(r.data)
					if err != nil || rcv != 0xcafe || c >= uint64(n) {
						t.Fatalf("received header %#x, %d, %v; want 0xcafe, counter < %d, nil", rcv, c, err, n)
					}
					if got[c] != nil {
						t.Fatalf("datagram %d received twice", c)
					}
					got[c] = r.data
					seen++
				case <-timeout:
					t.Fatalf("received %d of %d datagrams before the timeout", seen, n)
				}
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("datagram %d: got %d bytes %x..., want %d bytes %x...", i, len(got[i]),
						got[i][:TransportMinSize], len(want[i]), want[i][:TransportMinSize])
				}
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
			bufs := make([][]byte, b.BatchSize())
			for i := range bufs {
				bufs[i] = make([]byte, MaxSegmentSize)
			}
			_, err := fn(bufs, make([]int, len(bufs)), make([]Endpoint, len(bufs)))
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
	if _, _, err := b.Open(0); err != nil {
		t.Errorf("Open after Close: %v", err)
	}
	b.Close()
}
