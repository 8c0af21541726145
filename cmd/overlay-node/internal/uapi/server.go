package uapi

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/tunnel"
)

// Dir is where WireGuard implementations put their UAPI sockets; wg and
// wgctrl look there. The path is global, not per network namespace.
const Dir = "/var/run/wireguard"

// SocketPath returns the UAPI socket of the interface iface.
func SocketPath(iface string) string { return filepath.Join(Dir, iface+".sock") }

// Limits on a client: one connection may ask many questions (wg does, in
// turn), but it may not hold a goroutine forever or send an unbounded set.
const (
	connTimeout = 10 * time.Second
	maxSetBytes = 1 << 20
)

// Source is what the server reads: *tunnel.Device satisfies it.
type Source interface {
	Snapshot() tunnel.Stats
}

// Server answers the UAPI on one socket.
type Server struct {
	// Immutable.
	ln   net.Listener
	path string

	// Set by Serve.
	src  Source
	log  *slog.Logger
	done chan struct{} // closed when the accept loop returns; nil before Serve

	// Guarded by mu: open connections, closed by Close.
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // connection handlers
}

func newServer(ln net.Listener, path string) *Server {
	return &Server{ln: ln, path: path, conns: make(map[net.Conn]struct{})}
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers connections in the background until Close, reading src for
// every get.
func (s *Server) Serve(src Source, log *slog.Logger) {
	s.src, s.log = src, log
	s.done = make(chan struct{})
	go s.accept()
	log.Info("serving WireGuard UAPI", "socket", s.path)
}

func (s *Server) accept() {
	defer close(s.done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				// The ipc listener closes itself when the socket file is
				// deleted from under it.
				s.log.Warn("UAPI socket closed; wg show no longer sees this node", "socket", s.path, "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// handle answers one client's operations in turn, as wireguard-go does:
// "get=1\n\n" or "set=1\n...\n\n", each answered with a status line.
func (s *Server) handle(c net.Conn) {
	defer c.Close()
	rw := bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c))
	for {
		c.SetDeadline(time.Now().Add(connTimeout))
		op, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		switch op {
		case "get=1\n":
			if b, err := rw.ReadByte(); err != nil || b != '\n' {
				return
			}
			if err := WriteGet(rw, s.src.Snapshot()); err != nil {
				return
			}
		case "set=1\n":
			if err := skipSet(rw.Reader); err != nil {
				return
			}
			s.log.Warn("refused a UAPI set: change the mesh file instead", "socket", s.path)
			writeErrno(rw.Writer, errnoSetDenied)
		default:
			return
		}
		if err := rw.Flush(); err != nil {
			return
		}
	}
}

// skipSet reads the body of a set, up to the blank line that ends it.
func skipSet(r *bufio.Reader) error {
	n := 0
	partial := false // the last read ended inside a line too long for the buffer
	for {
		line, err := r.ReadSlice('\n')
		n += len(line)
		if n > maxSetBytes {
			return fmt.Errorf("set longer than %d bytes", maxSetBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			partial = true
			continue
		}
		if err != nil {
			return err
		}
		if len(line) == 1 && !partial {
			return nil
		}
		partial = false
	}
}

// Close stops serving, ends open connections and removes the socket.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	if s.done != nil {
		<-s.done
	}
	s.wg.Wait()
	return err
}
