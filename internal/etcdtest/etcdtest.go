// Package etcdtest runs a real etcd server for tests: Debian's etcd-server
// (make deps installs it), one member with its own data directory, either
// on loopback in the test's own network namespace or on a host of an
// nstest LAN. The server is stopped by PID when the test ends.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// Server is one etcd member.
type Server struct {
	t      testing.TB
	host   *nstest.Host // nil: the test's own namespace
	dir    string
	addr   string // client and peer IP
	client int    // client port
	peer   int
	URL    string    // client URL, http://IP:PORT, or https with StartTLS
	tls    *TLSFiles // nil: plain http

	mu   sync.Mutex
	proc *nstest.Proc // on host
	cmd  *exec.Cmd    // on loopback
	logs strings.Builder
}

// Require skips t unless the etcd binary is installed.
func Require(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (make deps installs etcd-server); skipping")
	}
	return bin
}

// Start starts etcd on loopback with free ports.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, dir: t.TempDir(), addr: "127.0.0.1", client: freePort(t), peer: freePort(t)}
	s.URL = fmt.Sprintf("http://%s:%d", s.addr, s.client)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// StartOn starts etcd on h, on its LAN address, ports 2379 and 2380.
func StartOn(t testing.TB, h *nstest.Host) *Server {
	t.Helper()
	Require(t)
	s := &Server{t: t, host: h, dir: t.TempDir(), addr: h.Addr.String(), client: 2379, peer: 2380}
	s.URL = fmt.Sprintf("http://%s:%d", s.addr, s.client)
	s.Start()
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) args() []string {
	peer := fmt.Sprintf("http://%s:%d", s.addr, s.peer)
	args := []string{
		"--name", "test", "--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", s.URL, "--advertise-client-urls", s.URL,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test=" + peer,
		"--log-outputs", "stderr", "--logger", "zap", "--log-level", "error",
		// Room for a mesh file of tens of thousands of nodes in one value.
		"--max-request-bytes", "33554432",
	}
	if s.tls != nil {
		args = append(args, s.tls.args()...)
	}
	return args
}

// Start starts the server (again, after Stop), with the same data, and
// waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	bin := Require(s.t)
	s.mu.Lock()
	if s.host != nil {
		s.proc = s.host.Start(s.t, bin, s.args()...)
	} else {
		s.cmd = exec.Command(bin, s.args()...)
		s.cmd.Stdout, s.cmd.Stderr = &lockedWriter{s}, &lockedWriter{s}
		if err := s.cmd.Start(); err != nil {
			s.mu.Unlock()
			s.t.Fatal(err)
		}
	}
	s.mu.Unlock()
	cli := s.Client()
	defer cli.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("etcd did not answer on %s within 15s: %v\n%s", s.URL, err, s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server by PID and waits for it; its data stays for a
// later Start.
func (s *Server) Stop() {
	s.mu.Lock()
	proc, cmd := s.proc, s.cmd
	s.proc, s.cmd = nil, nil
	s.mu.Unlock()
	// Unlocked: the output goroutines of cmd write under mu until it exits.
	switch {
	case proc != nil:
		proc.Signal(os.Kill)
		proc.Wait(10 * time.Second)
	case cmd != nil:
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// Output is what the server logged.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return s.proc.Output()
	}
	return s.logs.String()
}

// Client returns a client of the server. On a LAN host it dials from
// inside that host's namespace.
func (s *Server) Client() *clientv3.Client {
	s.t.Helper()
	cfg := clientv3.Config{Endpoints: []string{s.URL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if s.tls != nil {
		info := transport.TLSInfo{CertFile: s.tls.ClientCert, KeyFile: s.tls.ClientKey, TrustedCAFile: s.tls.CA}
		var err error
		if cfg.TLS, err = info.ClientConfig(); err != nil {
			s.t.Fatal(err)
		}
	}
	if s.host != nil {
		h := s.host
		cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			var c net.Conn
			err := h.InNetns(func() (err error) {
				var d net.Dialer
				c, err = d.DialContext(ctx, "tcp", addr)
				return err
			})
			return c, err
		})}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	return cli
}

type lockedWriter struct{ s *Server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}
