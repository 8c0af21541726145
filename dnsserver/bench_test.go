package dnsserver

import (
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// BenchmarkServeUDP measures answers from the zone over loopback UDP, with
// as many concurrent clients as GOMAXPROCS × 4, each waiting for its reply
// before the next query, as stub resolvers do. It reports queries per
// second and the 99th percentile latency a client saw.
func BenchmarkServeUDP(b *testing.B) {
	_, addr := start(b, testZone(b))
	q := new(dns.Msg).SetQuestion("postgres.mesh.internal.", dns.TypeA)
	raw, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 1500)
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			if _, err := c.Write(raw); err != nil {
				b.Error(err)
				return
			}
			c.SetReadDeadline(time.Now().Add(time.Second)) //nolint:errcheck // the read fails instead
			n, err := c.Read(buf)
			if err != nil || n < headerLen || buf[3]&0xF != dns.RcodeSuccess {
				b.Errorf("reply: %d bytes, err %v", n, err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
