package udprelay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addr(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// run sends n numbered datagrams from side A through a relay with im and
// returns the numbers side B got, in arrival order, and the relay's stats.
func run(t *testing.T, im Impairment, n int) ([]uint32, Stats) {
	t.Helper()
	a, b := listen(t), listen(t)
	toA, toB := listen(t), listen(t)
	r := New(toA, toB, addr(a), addr(b), im, 1)
	defer r.Close()
	arrived := make(chan []uint32)
	go func() {
		var got []uint32
		buf := make([]byte, 16)
		for {
			b.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			m, from, err := b.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if from != addr(toB) {
				got = append(got, 1<<31) // not from the relay: fails the count
				continue
			}
			got = append(got, binary.BigEndian.Uint32(buf[:m]))
		}
		arrived <- got
	}()
	for i := range n {
		var pkt [4]byte
		binary.BigEndian.PutUint32(pkt[:], uint32(i))
		if _, err := a.WriteToUDPAddrPort(pkt[:], addr(toA)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Microsecond) // don't overrun the socket buffers
	}
	got := <-arrived
	return got, r.Stats()
}

func TestForwardsInOrder(t *testing.T) {
	got, st := run(t, Impairment{Jitter: time.Millisecond}, 500)
	if len(got) != 500 || st.Sent != 500 {
		t.Fatalf("got %d datagrams (%d sent), want 500", len(got), st.Sent)
	}
	for i, v := range got {
		if v != uint32(i) {
			t.Fatalf("datagram %d is number %d: jitter alone must keep order", i, v)
		}
	}
}

func TestImpairs(t *testing.T) {
	const n = 4000
	got, st := run(t, Impairment{Loss: 0.1, Duplicate: 0.1, Reorder: 0.1}, n)
	seen := make(map[uint32]int)
	outOfOrder := 0
	for i, v := range got {
		seen[v]++
		if i > 0 && v < got[i-1] {
			outOfOrder++
		}
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	// 10% each, give or take: the counts are binomial around n/10.
	for what, v := range map[string]int{"lost": n - len(seen), "duplicated": dups, "out of order": outOfOrder} {
		if v < n/20 || v > n/5 {
			t.Errorf("%d of %d datagrams %s, want about 10%%", v, n, what)
		}
	}
	if st.Lost != uint64(n-len(seen)) || st.Received != n {
		t.Errorf("stats %+v: want %d received, %d lost", st, n, n-len(seen))
	}
}
