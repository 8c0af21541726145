package tunnel

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestBusyPollBudget(t *testing.T) {
	b := newBusyPoller(nil, 200*time.Microsecond)
	start := int64(10 * time.Second)
	if !b.allow(start) {
		t.Fatal("a fresh second has no budget")
	}
	b.spent = int64(busyPollBudget)
	if b.allow(start + int64(time.Second)/2) {
		t.Error("spinning allowed past the budget within the second")
	}
	if !b.allow(start + int64(time.Second)) {
		t.Error("the budget did not renew with the next second")
	}
}

// TestBusyPollDelivers runs the poller over a real descriptor that a
// goroutine reads through the Go netpoller: data that arrives while it
// spins still reaches the reader, the spinning stays within its window and
// budget, and stop ends it.
func TestBusyPollDelivers(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.SetNonblock(fds[0], true)
	r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	raw, _ := r.SyscallConn()
	var fd int
	raw.Control(func(f uintptr) { fd = int(f) })

	b := newBusyPoller([]int{fd}, 2*time.Millisecond)
	ran := make(chan struct{})
	go func() { b.run(); close(ran) }()
	got := make(chan int, 10)
	go func() {
		buf := make([]byte, 16)
		for {
			n, err := r.Read(buf)
			if err != nil {
				return
			}
			got <- n
			b.activity()
		}
	}()
	for i := range 5 {
		b.activity()
		if _, err := w.Write(make([]byte, i+1)); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			if n != i+1 {
				t.Fatalf("read %d bytes, want %d", n, i+1)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("data written during a polling window never reached its reader")
		}
	}
	time.Sleep(10 * time.Millisecond) // let the last window close
	b.stop()
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after stop")
	}
	if b.spent <= 0 || b.spent > int64(busyPollBudget) {
		t.Errorf("spun %v, want some, within the %v budget", time.Duration(b.spent), busyPollBudget)
	}
}
