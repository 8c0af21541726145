package control

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	testNow  = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	testNode = Node{Version: "1.2.3", Mesh: "demo", Name: "a", Interface: "ovl0",
		ConfigHash: "abc123", LoadedAt: time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC), MTU: 1420,
		Addresses:  []netip.Prefix{netip.MustParsePrefix("10.100.0.1/24")},
		Containers: []netip.Prefix{netip.MustParsePrefix("172.20.1.0/24"), netip.MustParsePrefix("fd00:20:1::/64")}}
)

// testStatus is what the test server reports.
func testStatus(node Node) Status {
	return Status{Schema: SchemaVersion, Time: testNow, Mesh: node.Mesh, Node: node.Name, ConfigHash: node.ConfigHash,
		Peers: []Peer{{Name: "b", Endpoint: netip.MustParseAddrPort("192.168.100.2:51820")}, {Name: "c"}}}
}

func startTestServer(t *testing.T) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "ovl0.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(testStatus, testNode, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFetchStatus(t *testing.T) {
	s := startTestServer(t)
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode: got %04o, want 0600", perm)
	}
	raw, st, err := FetchStatus(context.Background(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Node != "a" || len(st.Peers) != 2 || st.Peers[0].Name != "b" || st.Peers[0].Endpoint.Port() != 51820 {
		t.Errorf("got %+v", st)
	}
	if !json.Valid(raw) || !strings.Contains(string(raw), `"name": "b"`) {
		t.Errorf("raw answer is not the indented JSON object:\n%s", raw)
	}

	// A reload changes what is reported.
	n := testNode
	n.ConfigHash = "def456"
	s.SetNode(n)
	if _, st, err = FetchStatus(context.Background(), s.Path()); err != nil || st.ConfigHash != "def456" {
		t.Errorf("after SetNode: got %v, %v; want config_hash def456", st.ConfigHash, err)
	}
}

func TestFetchStatusNotRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	if _, _, err := FetchStatus(context.Background(), path); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no socket: got %v, want ErrNotRunning", err)
	}
	stale := staleSocket(t)
	if _, _, err := FetchStatus(context.Background(), stale); !errors.Is(err, ErrNotRunning) {
		t.Errorf("stale socket: got %v, want ErrNotRunning", err)
	}
}

// staleSocket leaves a socket file that nothing listens on, as a killed
// daemon does.
func staleSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return path
}

func TestListenClaims(t *testing.T) {
	// A live socket is in use.
	s := startTestServer(t)
	if _, err := Listen(s.Path()); !errors.Is(err, ErrInUse) {
		t.Errorf("live socket: got %v, want ErrInUse", err)
	}

	// A stale one is replaced.
	stale := staleSocket(t)
	s2, err := Listen(stale)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	s2.Serve(testStatus, testNode, slog.New(slog.DiscardHandler))
	if _, _, err := FetchStatus(context.Background(), stale); err != nil {
		t.Errorf("after replacing a stale socket: %v", err)
	}
	// Close removes it.
	if err := s2.Close(); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: got %v, want it removed", err)
	}

	// Anything else is left alone.
	file := filepath.Join(t.TempDir(), "file.sock")
	os.WriteFile(file, []byte("x"), 0o600)
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: got %v, want a not-a-socket error", err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("regular file was removed: %v", err)
	}
}

func TestFetchNode(t *testing.T) {
	s := startTestServer(t)
	n, err := FetchNode(context.Background(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "a" || n.MTU != 1420 || len(n.Addresses) != 1 || len(n.Containers) != 2 ||
		n.Containers[1] != testNode.Containers[1] || n.Domain != "" {
		t.Errorf("got %+v, want %+v", n, testNode)
	}
	if _, err := FetchNode(context.Background(), filepath.Join(t.TempDir(), "none.sock")); !errors.Is(err, ErrNotRunning) {
		t.Errorf("no socket: got %v, want ErrNotRunning", err)
	}
}
