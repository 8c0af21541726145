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
	"sync/atomic"
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

// DNS load: dnsWorkers clients, each with its own socket. Saturating, each
// has one query in flight, so at most dnsWorkers queries are outstanding;
// paced, each sends on its schedule whatever is outstanding. A query
// without an answer within dnsQueryTimeout counts as lost.
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
	lateP99        time.Duration // paced: how late the load itself sent, p99
}

// dnsLoad sends queries from h to server's port 53 for secs seconds, from
// dnsWorkers sockets opened in h's namespace, and returns the answered rate
// and the latency percentiles. With rate 0 each worker sends its next query
// as soon as the last is answered (the server's saturation); with a rate,
// the workers together send rate queries per second on a fixed schedule,
// without waiting for answers (dnsPacedWorker). Before the load it checks, once per name,
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
	late := make([][]time.Duration, dnsWorkers)
	lost := make([]int, dnsWorkers)
	errs := make([]error, dnsWorkers)
	var wg sync.WaitGroup
	start := time.Now()
	for w, c := range conns {
		wg.Go(func() {
			if rate == 0 {
				lat[w], lost[w], errs[w] = dnsWorker(c, uint16(w), deadline)
				return
			}
			interval := time.Duration(float64(dnsWorkers) / rate * float64(time.Second))
			lat[w], late[w], lost[w], errs[w] = dnsPacedWorker(c, deadline, interval)
		})
	}
	wg.Wait()
	elapsed := deadline.Sub(start) // the load's length, without the wait for the last answers
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
	if l := slices.Concat(late...); len(l) > 0 {
		slices.Sort(l)
		r.lateP99 = l[len(l)*99/100]
	}
	return r, nil
}

// packedQueries returns dnsQueries in wire format, IDs zero.
func packedQueries() ([][]byte, error) {
	queries := make([][]byte, len(dnsQueries))
	for i, q := range dnsQueries {
		b, err := new(dns.Msg).SetQuestion(q.name, q.qtype).Pack()
		if err != nil {
			return nil, err
		}
		queries[i] = b
	}
	return queries, nil
}

// dnsWorker sends the queries of dnsQueries in turn on c until deadline, one
// at a time, each as soon as the last is answered, and returns the latency
// of each answered one and how many went unanswered. IDs are the worker's
// number in the low byte and a counter in the high one, so a late reply to
// an earlier query is told apart and skipped.
func dnsWorker(c *net.UDPConn, worker uint16, deadline time.Time) (lat []time.Duration, lost int, err error) {
	queries, err := packedQueries()
	if err != nil {
		return nil, 0, err
	}
	lat = make([]time.Duration, 0, 1<<16)
	buf := make([]byte, 1500)
	for seq := 0; time.Now().Before(deadline); seq++ {
		q := queries[seq%len(queries)]
		id := worker&0xff | uint16(seq)<<8
		binary.BigEndian.PutUint16(q, id)
		sent := time.Now()
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

// dnsPacedWorker sends the queries of dnsQueries in turn on c, one every
// interval, from a random point of the first interval (so the workers'
// queries spread out) until deadline, and reads the answers on c at the
// same time. It is an open loop: a slow answer delays no later query, so
// a stall of the node counts against every query sent during it (no
// coordinated omission). A query's latency counts from when it left; late
// is how long after its scheduled time it left, which is the load's own
// timing, not the node's. The ID is the query's number.
func dnsPacedWorker(c *net.UDPConn, deadline time.Time, interval time.Duration) (lat, late []time.Duration, lost int, err error) {
	queries, err := packedQueries()
	if err != nil {
		return nil, nil, 0, err
	}
	c.SetReadDeadline(time.Time{}) // the answer check before the load set one
	base := time.Now()
	var sentAt [1 << 16]atomic.Int64 // by ID: when the query left, since base, plus 1; 0 when answered
	sent := 0
	done := make(chan struct{})
	var recvErr error
	go func() {
		defer close(done)
		lat = make([]time.Duration, 0, 1<<14)
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
			if err != nil {
				recvErr = err
				return
			}
			now := time.Since(base)
			if n < 12 {
				continue
			}
			id := binary.BigEndian.Uint16(buf)
			at := sentAt[id].Swap(0)
			if at == 0 {
				continue // a duplicate
			}
			if err := checkReplyHeader(buf[:n]); err != nil {
				recvErr = fmt.Errorf("%s: %w", dnsQueries[int(id)%len(dnsQueries)].name, err)
				return
			}
			lat = append(lat, now-time.Duration(at-1))
		}
	}()

	late = make([]time.Duration, 0, 1<<14)
	due := base.Add(time.Duration(rand.Int64N(int64(interval))))
	for seq := 0; due.Before(deadline); seq++ {
		time.Sleep(time.Until(due))
		q := queries[seq%len(queries)]
		id := uint16(seq)
		binary.BigEndian.PutUint16(q, id)
		left := time.Since(base)
		sentAt[id].Store(int64(left) + 1)
		if _, err := c.Write(q); err != nil {
			c.SetReadDeadline(time.Now())
			<-done
			return nil, nil, 0, err
		}
		sent++
		late = append(late, left-due.Sub(base))
		due = due.Add(interval)
	}
	c.SetReadDeadline(time.Now().Add(dnsQueryTimeout))
	<-done
	if recvErr != nil {
		return nil, nil, 0, recvErr
	}
	return lat, late, sent - len(lat), nil
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
