// Package dnsserver serves a dnszone.Zone over UDP and TCP, and forwards
// names outside the zone to upstream resolvers, so that a container can use
// its node as its only nameserver. The zone is swapped atomically on a
// reload. Counters are atomics, read by a metrics collector.
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/overlay-node/overlay-node/dnszone"
)

// Implementation constants.
const (
	// MaxForwards bounds the forwards in flight; a query beyond it gets
	// SERVFAIL at once rather than queueing.
	MaxForwards = 64
	// ForwardTimeout bounds one exchange with one upstream.
	ForwardTimeout = 2 * time.Second
	// maxUDPQueries bounds the UDP queries being answered at once; more
	// are dropped, and the client retries.
	maxUDPQueries = 256
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
)

// Config says where the server listens and where it forwards.
type Config struct {
	Listen    []netip.AddrPort // each address is served on UDP and TCP; port 0 picks a free one
	Upstreams []netip.AddrPort // tried in order for names outside the zone; none: REFUSED
	Health    dnszone.Health   // which instances of services to hand out; nil: all
	Logger    *slog.Logger     // nil: slog.Default()
}

// Server answers DNS queries from a zone. Start it once, Close it once.
type Server struct {
	// Immutable after New.
	cfg Config
	log *slog.Logger

	// Atomic.
	zone  atomic.Pointer[dnszone.Zone]
	stats Stats

	forwards chan struct{} // semaphore: MaxForwards slots
	udpSlots chan struct{} // semaphore: maxUDPQueries slots
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex // guards the fields below
	udp     []*net.UDPConn
	tcp     []*net.TCPListener
	conns   map[net.Conn]bool
	started bool
	closed  bool
}

// New returns a server for z. It does not listen until Start.
func New(cfg Config, z *dnszone.Zone) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg, log: cfg.Logger,
		forwards: make(chan struct{}, MaxForwards),
		udpSlots: make(chan struct{}, maxUDPQueries),
		ctx:      ctx, cancel: cancel,
		conns: make(map[net.Conn]bool),
	}
	s.zone.Store(z)
	return s
}

// Swap makes z the zone answered from the next query on.
func (s *Server) Swap(z *dnszone.Zone) { s.zone.Store(z) }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Start opens a UDP socket and a TCP listener on every Listen address and
// serves them until Close. On error, nothing is left open.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return errors.New("dnsserver: already started")
	}
	s.started = true
	for _, ap := range s.cfg.Listen {
		u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			s.closeLocked()
			return fmt.Errorf("dnsserver: listen udp %s: %w", ap, err)
		}
		s.udp = append(s.udp, u)
		// TCP on the same port as UDP, also when the port was picked.
		tap := netip.AddrPortFrom(ap.Addr(), u.LocalAddr().(*net.UDPAddr).AddrPort().Port())
		t, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(tap))
		if err != nil {
			s.closeLocked()
			return fmt.Errorf("dnsserver: listen tcp %s: %w", tap, err)
		}
		s.tcp = append(s.tcp, t)
	}
	for _, u := range s.udp {
		s.wg.Add(1)
		go s.serveUDP(u)
	}
	for _, t := range s.tcp {
		s.wg.Add(1)
		go s.serveTCP(t)
	}
	return nil
}

// Addrs returns the UDP addresses served, which are also the TCP ones:
// with port 0 in Listen, the ports picked.
func (s *Server) Addrs() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.AddrPort, len(s.udp))
	for i, u := range s.udp {
		out[i] = u.LocalAddr().(*net.UDPAddr).AddrPort()
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
	for _, u := range s.udp {
		u.Close()
	}
	for _, t := range s.tcp {
		t.Close()
	}
	for c := range s.conns {
		c.Close()
	}
}

func (s *Server) serveUDP(u *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("dns: udp read failed", "err", err)
				continue
			}
			return
		}
		select {
		case s.udpSlots <- struct{}{}:
		default:
			s.stats.Dropped.Add(1)
			continue
		}
		query := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer func() { <-s.udpSlots; s.wg.Done() }()
			if reply := s.respond(s.ctx, query, false); reply != nil {
				u.WriteToUDPAddrPort(reply, from) //nolint:errcheck // the client retries
			}
		}()
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
