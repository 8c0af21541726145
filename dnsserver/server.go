// Package dnsserver serves a dnszone.Zone over UDP and TCP, and forwards
// names outside the zone to upstream resolvers, so that a container can use
// its node as its only nameserver. The zone is swapped atomically on a
// reload, with the replies packed from it and kept to answer the same
// query again without allocating. Counters are atomics, read by a metrics
// collector.
package dnsserver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/overlay-node/overlay-node/dnszone"
)

// Implementation constants.
const (
	// MaxForwards bounds the forwards in flight; a query beyond it gets
	// SERVFAIL at once rather than queueing.
	MaxForwards = 64
	// ForwardTimeout bounds one exchange with one upstream.
	ForwardTimeout = 2 * time.Second
	// maxUDPForwards bounds the UDP queries being forwarded at once; more
	// are dropped, and the client retries.
	maxUDPForwards = 256
	// udpBatch is how many UDP queries one read takes and how many replies
	// one write sends.
	udpBatch = 16
	// maxUDPQuery is the longest UDP query read; a longer one is dropped
	// and counted malformed (stubs send queries of a few hundred bytes).
	maxUDPQuery = 4096
	// maxTCPConns bounds the open TCP connections.
	maxTCPConns = 128
	// tcpIdle is how long a TCP connection may wait for its next query.
	tcpIdle = 10 * time.Second
	// minUDPSize is the reply size every client takes (RFC 1035); maxUDPSize
	// caps what a client may ask for with EDNS0, to limit amplification.
	minUDPSize = 512
	maxUDPSize = 4096
	// ednsSize is the UDP size this server advertises and asks upstreams
	// for: one that is not fragmented on common paths (DNS flag day 2020).
	ednsSize = 1232
	// maxCacheBytes bounds the replies kept per zone, keys included: about
	// 30,000 replies of 150 bytes, the A and PTR names of a large mesh.
	maxCacheBytes = 4 << 20
)

// Config says where the server listens and where it forwards.
type Config struct {
	Listen    []netip.AddrPort // each address is served on UDP and TCP by Start; port 0 picks a free one
	Upstreams []netip.AddrPort // tried in order for names outside the zone; none: REFUSED. SetUpstreams replaces them
	Health    dnszone.Health   // which instances of services to hand out; nil: all
	Logger    *slog.Logger     // nil: slog.Default()
}

// Server answers DNS queries from a zone. Close it once.
type Server struct {
	// Immutable after New.
	cfg Config
	log *slog.Logger

	// Atomic: replaced whole on a reload.
	zone      atomic.Pointer[served]
	upstreams atomic.Pointer[[]netip.AddrPort]
	stats     Stats

	forwards    chan struct{} // semaphore: MaxForwards slots
	udpForwards chan struct{} // semaphore: maxUDPForwards slots
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	mu        sync.Mutex // guards the fields below
	listeners []listener
	conns     map[net.Conn]bool
	closed    bool
}

// listener is one served address: its UDP socket and TCP listener.
type listener struct {
	asked netip.AddrPort // as passed to Listen
	udp   *net.UDPConn
	tcp   *net.TCPListener
}

// addr is the address served: asked, with the port picked if it was 0.
func (l listener) addr() netip.AddrPort { return l.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

func (l listener) close() {
	l.udp.Close()
	l.tcp.Close()
}

// New returns a server for z, which may be nil. It does not listen until
// Start or Listen.
func New(cfg Config, z *dnszone.Zone) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger,
		forwards:    make(chan struct{}, MaxForwards),
		udpForwards: make(chan struct{}, maxUDPForwards),
		ctx:         ctx, cancel: cancel,
		conns: make(map[net.Conn]bool),
	}
	s.Swap(z)
	s.SetUpstreams(cfg.Upstreams)
	return s
}

// Swap makes z the zone answered from the next query on. With a nil zone,
// every name is outside it. The replies kept from the old zone go with it.
func (s *Server) Swap(z *dnszone.Zone) { s.zone.Store(&served{zone: z}) }

// SetUpstreams makes ups the upstreams from the next forward on.
func (s *Server) SetUpstreams(ups []netip.AddrPort) {
	ups = slices.Clone(ups)
	s.upstreams.Store(&ups)
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Start listens on every Config.Listen address: Listen(cfg.Listen).
func (s *Server) Start() error { return s.Listen(s.cfg.Listen) }

// Listen opens a UDP socket and a TCP listener on every address of addrs
// and serves them until Unlisten or Close. It may be called again to serve
// more addresses. On error, none of addrs is served.
func (s *Server) Listen(addrs []netip.AddrPort) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dnsserver: closed")
	}
	var opened []listener
	fail := func(err error) error {
		for _, l := range opened {
			l.close()
		}
		return err
	}
	for _, ap := range addrs {
		if s.listening(ap) {
			return fail(fmt.Errorf("dnsserver: %s is served already", ap))
		}
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return fail(fmt.Errorf("dnsserver: listen udp %s: %w", ap, err))
		}
		// TCP on the same port as UDP, also when the port was picked.
		tap := netip.AddrPortFrom(ap.Addr(), u.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(tap))
		if err != nil {
			u.Close()
			return fail(fmt.Errorf("dnsserver: listen tcp %s: %w", tap, err))
		}
		opened = append(opened, listener{asked: ap, udp: u, tcp: t})
	}
	for _, l := range opened {
		s.wg.Add(2)
		go s.serveUDP(l.udp)
		go s.serveTCP(l.tcp)
	}
	s.listeners = append(s.listeners, opened...)
	return nil
}

// Unlisten stops serving addrs: as passed to Listen, or as Addrs returns
// them. Queries being answered and open TCP connections finish; Close ends
// those.
func (s *Server) Unlisten(addrs []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.listeners[:0]
	for _, l := range s.listeners {
		if slices.Contains(addrs, l.asked) || slices.Contains(addrs, l.addr()) {
			l.close()
		} else {
			kept = append(kept, l)
		}
	}
	clear(s.listeners[len(kept):])
	s.listeners = kept
}

// listening reports whether ap, as passed to Listen, is served; s.mu held.
func (s *Server) listening(ap netip.AddrPort) bool {
	for _, l := range s.listeners {
		if l.asked == ap {
			return true
		}
	}
	return false
}

// Addrs returns the UDP addresses served, which are also the TCP ones:
// with port 0 in Listen, the ports picked.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.AddrPort, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.addr()
	}
	return out
}

// Close stops serving, aborts forwards in flight and waits for every
// goroutine of the server to return.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closeLocked()
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) closeLocked() {
	s.closed = true
	s.cancel()
	for _, l := range s.listeners {
		l.close()
	}
	s.listeners = nil
	for c := range s.conns {
		c.Close()
	}
}

// serveUDP answers the queries of one UDP socket: it reads them in batches
// (recvmmsg on Linux), answers those of the zone at once and sends their
// replies in one batch (sendmmsg), so a busy server makes two system calls
// per batch rather than two per query. A name outside the zone is
// forwarded in a goroutine of its own, since an upstream may take seconds.
// Replies from the zone's cache are written into the batch's own buffers.
func (s *Server) serveUDP(u *net.UDPConn) {
	defer s.wg.Done()
	conn := batchConn(u)
	in := make([]ipv4.Message, udpBatch)
	out := make([]ipv4.Message, udpBatch)
	bufs := make([][]byte, udpBatch) // for out[i]'s reply from the cache
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, maxUDPQuery+1)} // a byte more tells a longer one
		out[i].Buffers = make([][]byte, 1)
		bufs[i] = make([]byte, maxUDPSize)
	}
	for {
		n, err := conn.ReadBatch(in, 0)
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns: udp read failed", "err", err)
				continue
			}
			return
		}
		k := 0 // replies in out
		for i := range in[:n] {
			m := &in[i]
			if m.N > maxUDPQuery {
				s.stats.Malformed.Add(1)
				continue
			}
			q, reply, done := s.respondLocal(m.Buffers[0][:m.N], false, bufs[k])
			if done {
				if reply != nil {
					out[k].Buffers[0], out[k].Addr = reply, m.Addr
					k++
				}
				continue
			}
			s.forwardUDP(u, q, m.Addr)
		}
		writeAll(conn, out[:k])
	}
}

// forwardUDP answers q from the upstreams in a goroutine and sends the
// reply to from. Beyond maxUDPForwards at once the query is dropped and the
// client retries.
func (s *Server) forwardUDP(u *net.UDPConn, q query, from net.Addr) {
	select {
	case s.udpForwards <- struct{}{}:
	default:
		s.stats.Dropped.Add(1)
		return
	}
	s.wg.Add(1)
	go func() {
		defer func() { <-s.udpForwards; s.wg.Done() }()
		if reply := s.respondForward(s.ctx, q); reply != nil {
			u.WriteTo(reply, from) //nolint:errcheck // the client retries
		}
	}()
}

// udpBatchConn reads and writes batches of datagrams.
type udpBatchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchConn returns u's batch reader and writer for its address family.
func batchConn(u *net.UDPConn) udpBatchConn {
	if u.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap().Is4() {
		return ipv4.NewPacketConn(u)
	}
	return ipv6.NewPacketConn(u)
}

// writeAll sends ms, in as many batches as the socket takes. A reply that
// cannot be sent is lost, and its client retries.
func writeAll(conn udpBatchConn, ms []ipv4.Message) {
	for len(ms) > 0 {
		n, err := conn.WriteBatch(ms, 0)
		if err != nil {
			n = max(n, 1) // skip the reply that failed (e.g. an unreachable client)
		}
		ms = ms[n:]
	}
}

func (s *Server) serveTCP(l *net.TCPListener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns: tcp accept failed", "err", err)
				time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
				continue
			}
			return
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= maxTCPConns {
			s.mu.Unlock()
			s.stats.Dropped.Add(1)
			c.Close()
			continue
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

// serveConn answers the queries of one TCP connection in turn (RFC 7766):
// each message is preceded by its length in two bytes.
func (s *Server) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
		s.wg.Done()
	}()
	var lenBuf [2]byte
	buf := make([]byte, 65535)
	for {
		c.SetDeadline(time.Now().Add(tcpIdle)) //nolint:errcheck // reads fail instead
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return
		}
		reply := s.respond(s.ctx, buf[:n], true)
		if reply == nil {
			return // dropped: nothing to say on this connection
		}
		out := make([]byte, 2+len(reply))
		binary.BigEndian.PutUint16(out, uint16(len(reply)))
		copy(out[2:], reply)
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
