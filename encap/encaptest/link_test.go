package encaptest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/encap"
)

func TestClose(t *testing.T) {
	a, b := NewPair()
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Open(0); !errors.Is(err, ErrAlreadyOpen) {
		t.Errorf("second Open = %v, want ErrAlreadyOpen", err)
	}
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	// A blocked receive is released by Close.
	done := make(chan error)
	go func() {
		_, err := newBatch(1, 100).call(fns[0])
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked receive returned %v after Close, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("receive still blocked 5s after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	// Closed: sends to it go nowhere, its own Send and Inject fail.
	if err := a.Send(pkts(3), b.Addr()); err != nil {
		t.Errorf("Send to a closed peer = %v, want nil (UDP does not report it)", err)
	}
	if got := a.Stats().Unroutable; got != 3 {
		t.Errorf("Unroutable after sending to a closed peer = %d, want 3", got)
	}
	if err := b.Send(pkts(1), a.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send on a closed bind = %v, want net.ErrClosed", err)
	}
	if err := b.Inject([]byte("x"), netip.AddrPort{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Inject on a closed bind = %v, want net.ErrClosed", err)
	}

	// Reopened: the old ReceiveFunc stays closed even with datagrams queued
	// for the new one, which gets them.
	fns2, port, err := b.Open(0)
	if err != nil || port != DefaultPort {
		t.Fatalf("reopen = %d, %v; want %d, nil", port, err, DefaultPort)
	}
	if err := a.Send(pkts(2), b.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := newBatch(1, 100).call(fns[0]); !errors.Is(err, net.ErrClosed) {
		t.Errorf("old ReceiveFunc after reopen = %v, want net.ErrClosed", err)
	}
	if got := newBatch(4, 100).datagrams(t, fns2[0]); len(got) != 2 {
		t.Errorf("new ReceiveFunc got %d datagrams, want 2", len(got))
	}

	// Closed with datagrams queued: a receive after Close fails anyway.
	if err := a.Send(pkts(2), b.Addr()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := newBatch(4, 100).call(fns2[0]); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive after Close with datagrams queued = %v, want net.ErrClosed", err)
	}
}

func TestAddressing(t *testing.T) {
	a, b := NewPair()
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	fns, port, err := b.Open(4000)
	if err != nil || port != 4000 {
		t.Fatalf("Open(4000) = %d, %v; want 4000, nil", port, err)
	}
	defer b.Close()
	if got, want := b.Addr(), netip.MustParseAddrPort("127.0.0.2:4000"); got != want {
		t.Errorf("Addr() after Open(4000) = %v, want %v", got, want)
	}

	for _, to := range []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.2:51820"),
		netip.MustParseAddrPort("127.0.0.3:4000"),
		netip.MustParseAddrPort("[::1]:4000"),
		netip.MustParseAddrPort("[::ffff:127.0.0.2]:4000"),
		{},
	} {
		if err := a.Send(pkts(1), to); err != nil {
			t.Errorf("Send to %v = %v, want nil", to, err)
		}
	}
	if got := a.Stats().Unroutable; got != 5 {
		t.Errorf("Unroutable = %d, want 5", got)
	}
	if err := a.Send(pkts(1), netip.MustParseAddrPort("127.0.0.2:4000")); err != nil {
		t.Fatal(err)
	}
	if got := newBatch(4, 100).datagrams(t, fns[0]); len(got) != 1 {
		t.Errorf("received %d datagrams, want only the one sent to 127.0.0.2:4000", len(got))
	}
}

func TestSendErrors(t *testing.T) {
	a, b, _, rb := open(t)
	if got, want := a.BatchSize(), encap.BatchSize; got != want {
		t.Errorf("BatchSize() = %d, want encap.BatchSize (%d)", got, want)
	}
	if err := a.Send(pkts(a.BatchSize()+1), b.Addr()); err == nil {
		t.Errorf("Send of BatchSize+1 datagrams = nil, want an error")
	}
	if got := a.Stats().Sent; got != 0 {
		t.Errorf("Sent after a refused Send = %d, want 0", got)
	}
	if _, err := newBatch(b.BatchSize()+1, 10).call(rb); err == nil {
		t.Errorf("receive into BatchSize+1 messages = nil, want an error")
	}
	if _, err := rb(nil); err == nil {
		t.Errorf("receive into no messages = nil, want an error")
	}
}

func TestSetBatchSize(t *testing.T) {
	a, b := NewPair()
	b.SetBatchSize(1)
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if got := b.BatchSize(); got != 1 {
		t.Errorf("BatchSize() = %d, want 1", got)
	}
	if err := b.Send(pkts(2), a.Addr()); err == nil {
		t.Errorf("Send of 2 datagrams with batch size 1 = nil, want an error")
	}
	if _, err := newBatch(2, 100).call(fns[0]); err == nil {
		t.Errorf("receive into 2 messages with batch size 1 = nil, want an error")
	}

	// Without GRO, the engine's one-datagram-per-receive path.
	b.SetGRO(false)
	if err := a.Send(pkts(3), b.Addr()); err != nil {
		t.Fatal(err)
	}
	bt := newBatch(1, 100)
	for i := range 3 {
		got := bt.datagrams(t, fns[0])
		if want := fmt.Sprintf("datagram %03d", i); len(got) != 1 || got[0].data != want {
			t.Fatalf("receive %d returned %v, want only %q", i, got, want)
		}
	}
}

func TestOverflow(t *testing.T) {
	a, b := NewPair()
	b.SetQueueLen(4)
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, _, err := a.Open(0); err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	if err := a.Send(pkts(10), b.Addr()); err != nil {
		t.Errorf("Send into a full queue = %v, want nil (dropped, not failed)", err)
	}
	if err := b.Inject([]byte("x"), netip.AddrPort{}); !errors.Is(err, ErrQueueFull) {
		t.Errorf("Inject into a full queue = %v, want ErrQueueFull", err)
	}
	if got, want := b.Stats().Overflow, uint64(7); got != want {
		t.Errorf("Overflow = %d, want %d", got, want)
	}
	got := newBatch(16, encap.MaxSegmentSize).datagrams(t, fns[0])
	if len(got) != 4 {
		t.Fatalf("received %d datagrams, want the 4 that fit", len(got))
	}
	for i := range 4 {
		if want := fmt.Sprintf("datagram %03d", i); got[i].data != want {
			t.Errorf("datagram %d = %q, want %q (the oldest are kept)", i, got[i].data, want)
		}
	}
	// The queue has room again once read.
	if err := b.Inject([]byte("x"), netip.AddrPort{}); err != nil {
		t.Errorf("Inject after the queue was read = %v, want nil", err)
	}
}

// impaired sends n datagrams through an impairment and returns what arrived.
func impaired(t *testing.T, im Impairment, n int) ([]string, Stats) {
	t.Helper()
	a, b, _, rb := open(t)
	a.SetImpairment(im)
	if err := a.Send(pkts(n), b.Addr()); err != nil {
		t.Fatal(err)
	}
	var got []string
	if a.Stats().Sent-a.Stats().Lost > 0 {
		for _, d := range newBatch(a.BatchSize(), encap.MaxSegmentSize).datagrams(t, rb) {
			got = append(got, d.data)
		}
	}
	return got, a.Stats()
}

func TestImpairment(t *testing.T) {
	t.Run("loss", func(t *testing.T) {
		got, st := impaired(t, Impairment{Loss: 0.5, Seed: 1}, 100)
		if st.Lost == 0 || st.Lost == 100 || uint64(len(got))+st.Lost != 100 {
			t.Errorf("lost %d and delivered %d of 100, want some of each adding up to 100", st.Lost, len(got))
		}
		again, _ := impaired(t, Impairment{Loss: 0.5, Seed: 1}, 100)
		if fmt.Sprint(got) != fmt.Sprint(again) {
			t.Errorf("the same seed delivered %v, then %v", got, again)
		}
	})
	t.Run("total loss", func(t *testing.T) {
		got, st := impaired(t, Impairment{Loss: 1}, 10)
		if len(got) != 0 || st.Lost != 10 {
			t.Errorf("delivered %d and lost %d, want 0 and 10", len(got), st.Lost)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		got, _ := impaired(t, Impairment{Duplicate: 1}, 3)
		want := []string{"datagram 000", "datagram 000", "datagram 001", "datagram 001", "datagram 002", "datagram 002"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("delivered %q, want %q", got, want)
		}
	})
	t.Run("reorder", func(t *testing.T) {
		got, _ := impaired(t, Impairment{Reorder: 1}, 5)
		want := []string{"datagram 001", "datagram 000", "datagram 003", "datagram 002", "datagram 004"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("delivered %q, want %q", got, want)
		}
	})
}
