// Package udprelay is an impairing UDP relay over real sockets: it stands
// between two UDP endpoints, as a bad network path would, and loses,
// duplicates, delays and reorders what it forwards. Namespace tests put it
// between two nodes where netem is not available.
//
// A Relay owns two sockets, one facing each side. What arrives on the
// socket facing A is forwarded to B from the socket facing B, and the other
// way round, so each side sees the other at the relay's address: in a
// mesh file, each node's endpoint is the relay socket that faces the other.
package udprelay

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Impairment is what the relay does to each datagram, in each direction
// independently. The zero value forwards everything at once, in order.
type Impairment struct {
	Loss      float64       // probability a datagram is dropped
	Duplicate float64       // probability a datagram is sent twice
	Reorder   float64       // probability a datagram is held back so later ones overtake it
	Jitter    time.Duration // each datagram is delayed up to this long, order kept
	HoldBack  time.Duration // how much longer a reordered datagram waits; 0 means 5 ms
}

// Stats counts what the relay did, over both directions.
type Stats struct {
	Received, Sent, Lost, Duplicated, Reordered uint64
}

// maxDatagram bounds a datagram the relay forwards: a UDP payload.
const maxDatagram = 65535

// queueLen bounds the datagrams waiting for their send time per
// direction; beyond it they are dropped, as a full router queue does.
const queueLen = 4096

// A Relay forwards between two sides until Close.
type Relay struct {
	im     Impairment
	wg     sync.WaitGroup
	closed atomic.Bool

	received, sent, lost, duplicated, reordered atomic.Uint64
	socks                                       [2]*net.UDPConn
}

// New starts a relay that forwards what toA receives to b (sent from toB)
// and what toB receives to a (sent from toA): toA is the socket that faces
// side A, whose endpoint is a. The relay owns both sockets; seed makes its
// choices repeatable.
func New(toA, toB *net.UDPConn, a, b netip.AddrPort, im Impairment, seed uint64) *Relay {
	if im.HoldBack == 0 {
		im.HoldBack = 5 * time.Millisecond
	}
	r := &Relay{im: im, socks: [2]*net.UDPConn{toA, toB}}
	r.wg.Add(2)
	go r.forward(toA, toB, b, rand.New(rand.NewPCG(seed, 1)))
	go r.forward(toB, toA, a, rand.New(rand.NewPCG(seed, 2)))
	return r
}

// pending is a datagram waiting for its send time.
type pending struct {
	at  time.Time
	pkt []byte
}

// forward moves datagrams from in to dst, sent from out, until in closes.
func (r *Relay) forward(in, out *net.UDPConn, dst netip.AddrPort, rng *rand.Rand) {
	defer r.wg.Done()
	queue := make(chan pending, queueLen)
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for p := range queue {
			time.Sleep(time.Until(p.at))
			r.send(out, p.pkt, dst)
		}
	}()
	defer func() { close(queue); sender.Wait() }()

	var last time.Time // send time of the last in-order datagram
	buf := make([]byte, maxDatagram)
	for {
		n, err := in.Read(buf)
		if err != nil {
			if r.closed.Load() {
				return
			}
			continue // a refused earlier send surfaces here on Linux
		}
		r.received.Add(1)
		if rng.Float64() < r.im.Loss {
			r.lost.Add(1)
			continue
		}
		copies := 1
		if rng.Float64() < r.im.Duplicate {
			copies = 2
			r.duplicated.Add(1)
		}
		for range copies {
			pkt := append([]byte(nil), buf[:n]...)
			at := time.Now()
			if r.im.Jitter > 0 {
				at = at.Add(time.Duration(rng.Int64N(int64(r.im.Jitter))))
			}
			if rng.Float64() < r.im.Reorder {
				r.reordered.Add(1)
				time.AfterFunc(time.Until(at)+r.im.HoldBack, func() { r.send(out, pkt, dst) })
				continue
			}
			if at.Before(last) {
				at = last
			}
			last = at
			select {
			case queue <- pending{at, pkt}:
			default:
				r.lost.Add(1)
			}
		}
	}
}

func (r *Relay) send(out *net.UDPConn, pkt []byte, dst netip.AddrPort) {
	if _, err := out.WriteToUDPAddrPort(pkt, dst); err == nil {
		r.sent.Add(1)
	}
}

// Stats returns the counts so far.
func (r *Relay) Stats() Stats {
	return Stats{
		Received:   r.received.Load(),
		Sent:       r.sent.Load(),
		Lost:       r.lost.Load(),
		Duplicated: r.duplicated.Load(),
		Reordered:  r.reordered.Load(),
	}
}

// Close stops the relay and closes its sockets. Datagrams still waiting
// for their send time are sent or dropped.
func (r *Relay) Close() error {
	r.closed.Store(true)
	err := r.socks[0].Close()
	if err2 := r.socks[1].Close(); err == nil {
		err = err2
	}
	r.wg.Wait()
	return err
}
