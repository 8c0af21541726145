package lease

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

func TestAcquireRelease(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("172.20.1.0/29") // .1 gateway, .2-.6 containers, .7 broadcast
	var got []netip.Addr
	for i := range 5 {
		a, err := s.Acquire(p, Holder{"c" + strconv.Itoa(i), "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	for i, a := range got {
		if want := netip.AddrFrom4([4]byte{172, 20, 1, byte(i + 2)}); a != want {
			t.Errorf("lease %d: got %s, want %s", i, a, want)
		}
	}
	if _, err := s.Acquire(p, Holder{"c9", "eth0"}); !errors.Is(err, ErrExhausted) {
		t.Errorf("sixth lease of a /29: got %v, want ErrExhausted", err)
	}
	// The same holder gets the same address again.
	if a, err := s.Acquire(p, Holder{"c3", "eth0"}); err != nil || a != got[3] {
		t.Errorf("again for c3: got %s, %v; want %s", a, err, got[3])
	}
	// A released address is the next one handed out; releasing twice is fine.
	for range 2 {
		if err := s.Release(Holder{"c1", "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	if a, err := s.Acquire(p, Holder{"c9", "eth0"}); err != nil || a != got[1] {
		t.Errorf("after release: got %s, %v; want %s", a, err, got[1])
	}
}

func TestIPv6(t *testing.T) {
	s, _ := Open(t.TempDir())
	p := netip.MustParsePrefix("fd00:20:1::/64")
	a, err := s.Acquire(p, Holder{"c", "eth0"})
	if want := netip.MustParseAddr("fd00:20:1::2"); err != nil || a != want {
		t.Fatalf("got %s, %v; want %s", a, err, want)
	}
	leases, err := s.Leases()
	if err != nil || leases[a] != (Holder{"c", "eth0"}) {
		t.Errorf("leases: got %v, %v", leases, err)
	}
	if g := Gateway(p); g != netip.MustParseAddr("fd00:20:1::1") {
		t.Errorf("gateway: got %s", g)
	}
}

func TestKeep(t *testing.T) {
	s, _ := Open(t.TempDir())
	p := netip.MustParsePrefix("172.20.1.0/24")
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.Acquire(p, Holder{id, "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Keep([]Holder{{"b", "eth0"}, {"z", "eth0"}}); err != nil {
		t.Fatal(err)
	}
	leases, _ := s.Leases()
	if len(leases) != 1 || leases[netip.MustParseAddr("172.20.1.3")] != (Holder{"b", "eth0"}) {
		t.Errorf("after Keep(b): got %v, want only b's lease", leases)
	}
}

// Leases are taken by separate processes at once, as a runtime starting
// containers does: each gets its own address.
func TestConcurrentProcesses(t *testing.T) {
	if dir := os.Getenv("LEASE_HELPER_DIR"); dir != "" {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.Acquire(netip.MustParsePrefix("172.20.1.0/24"), Holder{os.Getenv("LEASE_HELPER_ID"), "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(a)
		return
	}
	dir := t.TempDir()
	const n = 20
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentProcesses$")
			cmd.Env = append(os.Environ(), "LEASE_HELPER_DIR="+dir, "LEASE_HELPER_ID=c"+strconv.Itoa(i))
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("process %d: %v", i, err)
			}
			got[i] = string(out)
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i, a := range got {
		addr, err := netip.ParseAddr(firstLine(a))
		if err != nil {
			t.Fatalf("process %d printed %q", i, a)
		}
		if seen[addr.String()] {
			t.Errorf("%s leased twice", addr)
		}
		seen[addr.String()] = true
	}
	leases, _ := (&Store{dir: dir}).Leases()
	if len(leases) != n {
		t.Errorf("got %d leases on disk, want %d", len(leases), n)
	}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
