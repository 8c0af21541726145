//go:build netbench

package bench_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The zone the overlay-node pair serves: its mesh has this domain, and one
// service on node b (see startOverlayPair).
const (
	dnsDomain  = "bench.internal"
	dnsService = "web"
)

// DNS load: dnsWorkers clients, each with its own socket and one query in
// flight, so at most dnsWorkers queries are outstanding; a query without an
// answer within dnsQueryTimeout counts as lost and the worker goes on.
const (
	dnsWorkers      = 32
	dnsQueryTimeout = 200 * time.Millisecond
)

// dnsTargetRate is the rate issue 12 asks the node to answer at, with a
// p99 of at most 2 ms: the saturated load must reach it, and the paced
// load offers it.
const dnsTargetRate float64 = 50000

// dnsQueries are the names the load asks B for, in turn: both nodes, the
// service's addresses and its SRV record, all answered from the zone.
var dnsQueries = []struct {
	name  string
	qtype uint16
}{
	{"a." + dnsDomain + ".", dns.TypeA},
	{"b." + dnsDomain + ".", dns.TypeA},
	{dnsService + "." + dnsDomain + ".", dns.TypeA},
	{"_" + dnsService + "._tcp." + dnsDomain + ".", dns.TypeSRV},
}

// dnsResult is what one DNS load run saw.
type dnsResult struct {
	answered, lost int
	qps            float64       // answered queries per second
	p50, p99       time.Duration // latency of the answered queries
}

// dnsLoad sends queries from h to server's port 53 for secs seconds, from
// dnsWorkers sockets opened in h's namespace, and returns the answered rate
// and the latency percentiles. With rate 0 each worker sends its next query
// as soon as the last is answered (the server's saturation); with a rate,
// the workers together send rate queries per second on a fixed schedule,
// and a query's latency counts from when the schedule said to send it, so
// that a slow answer which delays the next query counts against both
// (no coordinated omission). Before the load it checks, once per name,
// that the full answer is what the zone holds; during it, that each reply
// matches its query's ID and is a NOERROR answer with at least one record.
func dnsLoad(h *nstest.Host, server netip.Addr, secs int, rate float64) (dnsResult, error) {
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, 53))
	conns := make([]*net.UDPConn, dnsWorkers)
	err := h.InNetns(func() error {
		for i := range conns {
			c, err := net.DialUDP("udp", nil, dst)
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	})
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return dnsResult{}, err
	}
	if err := checkZoneAnswers(conns[0]); err != nil {
		return dnsResult{}, err
	}

	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	lat := make([][]time.Duration, dnsWorkers)
	lost := make([]int, dnsWorkers)
	errs := make([]error, dnsWorkers)
	var wg sync.WaitGroup
	start := time.Now()
	for w, c := range conns {
		wg.Go(func() {
			var interval time.Duration
			if rate > 0 {
				interval = time.Duration(float64(dnsWorkers) / rate * float64(time.Second))
			}
			lat[w], lost[w], errs[w] = dnsWorker(c, uint16(w), deadline, interval)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return dnsResult{}, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return dnsResult{}, fmt.Errorf("no query to %v was answered in %d s", dst, secs)
	}
	slices.Sort(all)
	r := dnsResult{answered: len(all), qps: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)/2], p99: all[len(all)*99/100]}
	for _, n := range lost {
		r.lost += n
	}
	return r, nil
}

// dnsWorker sends the queries of dnsQueries in turn on c until deadline, one
// at a time, and returns the latency of each answered one and how many went
// unanswered. With an interval, query i is due at start + i × interval
// (the worker starts at a random point of its first interval, so the
// workers' queries spread out) and its latency counts from then. IDs are
// the worker's number in the low byte and a counter in the high one, so a
// late reply to an earlier query is told apart and skipped.
func dnsWorker(c *net.UDPConn, worker uint16, deadline time.Time, interval time.Duration) ([]time.Duration, int, error) {
	queries := make([][]byte, len(dnsQueries))
	for i, q := range dnsQueries {
		m := new(dns.Msg).SetQuestion(q.name, q.qtype)
		b, err := m.Pack()
		if err != nil {
			return nil, 0, err
		}
		queries[i] = b
	}
	lat := make([]time.Duration, 0, 1<<16)
	lost := 0
	buf := make([]byte, 1500)
	due := time.Now()
	if interval > 0 {
		due = due.Add(time.Duration(rand.Int64N(int64(interval))))
	}
	for seq := 0; time.Now().Before(deadline); seq++ {
		q := queries[seq%len(queries)]
		id := worker&0xff | uint16(seq)<<8
		binary.BigEndian.PutUint16(q, id)
		sent := time.Now()
		if interval > 0 {
			time.Sleep(time.Until(due))
			sent, due = due, due.Add(interval)
		}
		if _, err := c.Write(q); err != nil {
			return nil, 0, err
		}
		c.SetReadDeadline(sent.Add(dnsQueryTimeout))
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				lost++
				break
			}
			if err != nil {
				return nil, 0, err
			}
			if n < 12 || binary.BigEndian.Uint16(buf) != id {
				continue // a late answer to an earlier query
			}
			if err := checkReplyHeader(buf[:n]); err != nil {
				return nil, 0, fmt.Errorf("%s: %w", dnsQueries[seq%len(dnsQueries)].name, err)
			}
			lat = append(lat, time.Since(sent))
			break
		}
	}
	return lat, lost, nil
}

// checkReplyHeader checks the header of a reply without parsing the rest,
// so the client spends little of the machine's CPU: a response (QR), with
// RCODE NOERROR and at least one answer record.
func checkReplyHeader(b []byte) error {
	flags := binary.BigEndian.Uint16(b[2:])
	switch {
	case flags&(1<<15) == 0:
		return errors.New("reply is not a response")
	case flags&0xf != dns.RcodeSuccess:
		return fmt.Errorf("reply has rcode %s", dns.RcodeToString[int(flags&0xf)])
	case binary.BigEndian.Uint16(b[6:]) == 0:
		return errors.New("reply has no answer")
	}
	return nil
}

// checkZoneAnswers asks each name of dnsQueries once on c and checks the
// whole answer against the mesh: the nodes' addresses, the service's
// instance (node b) and its SRV target.
func checkZoneAnswers(c *net.UDPConn) error {
	want := map[string]string{
		dnsQueries[0].name: overlayA.Addr().String(),
		dnsQueries[1].name: overlayB.Addr().String(),
		dnsQueries[2].name: overlayB.Addr().String(),
		dnsQueries[3].name: "b." + dnsDomain + ".",
	}
	buf := make([]byte, 1500)
	for _, q := range dnsQueries {
		m := new(dns.Msg).SetQuestion(q.name, q.qtype)
		b, err := m.Pack()
		if err != nil {
			return err
		}
		var reply dns.Msg
		for try := 0; ; try++ {
			if _, err := c.Write(b); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, err := c.Read(buf)
			if err == nil {
				if err := reply.Unpack(buf[:n]); err != nil {
					return fmt.Errorf("%s: %w", q.name, err)
				}
				break
			}
			if try == 2 {
				return fmt.Errorf("%s: no answer: %w", q.name, err)
			}
		}
		if len(reply.Answer) != 1 {
			return fmt.Errorf("%s: want 1 answer, got %v", q.name, reply.Answer)
		}
		var got string
		switch rr := reply.Answer[0].(type) {
		case *dns.A:
			got = rr.A.String()
		case *dns.SRV:
			got = rr.Target
		}
		if got != want[q.name] {
			return fmt.Errorf("%s: answer %v, want %s", q.name, reply.Answer[0], want[q.name])
		}
	}
	return nil
}
