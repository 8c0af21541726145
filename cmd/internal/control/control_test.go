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

	"github.com/overlay-node/overlay-node/cmd/internal/statstest"
	"github.com/overlay-node/overlay-node/tunnel"
)

var (
	testNow  = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	testNode = Node{Version: "1.2.3", Mesh: "demo", Name: "a", Interface: "ovl0",
		ConfigHash: "abc123", LoadedAt: time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC)}
)

func testStats() tunnel.Stats {
	var drops, bDrops tunnel.DropCounts
	drops[tunnel.DropMalformed] = 1000
	drops[tunnel.DropDecrypt] = 2
	bDrops[tunnel.DropDecrypt] = 2
	return tunnel.Stats{
		PublicKey:  statstest.Key(1),
		ListenPort: 51820,
		MTU:        1420,
		Drops:      drops,
		Peers: []tunnel.PeerStats{
			{
				Name:                "b",
				PublicKey:           statstest.Key(2),
				Endpoint:            netip.MustParseAddrPort("192.168.100.2:51820"),
				AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.100.0.2/32")},
				PersistentKeepalive: 25 * time.Second,
				RxBytes:             100, TxBytes: 200, RxPackets: 3, TxPackets: 4,
				HandshakesCompleted: 1,
				LastHandshake:       testNow.Add(-12*time.Second - 300*time.Millisecond),
				Drops:               bDrops,
			},
			{Name: "c", PublicKey: statstest.Key(3)},
		},
	}
}

// The JSON field names are a contract: docs/metrics.md and scripts use
// them. A change here must be a deliberate one.
func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(NewStatus(testStats(), testNode, testNow))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantTop := []string{"schema", "time", "version", "mesh", "node", "interface", "public_key",
		"listen_port", "mtu", "config_hash", "config_loaded", "peers", "drops", "dns"}
	checkKeys(t, "status", got, wantTop)
	if got["schema"] != float64(1) || got["mesh"] != "demo" || got["node"] != "a" || got["public_key"] != statstest.Key(1).String() {
		t.Errorf("status: got %v", got)
	}
	drops := got["drops"].(map[string]any)
	if len(drops) != len(tunnel.DropReasons()) || drops["malformed"] != float64(1000) {
		t.Errorf("drops: got %v, want every reason, malformed 1000", drops)
	}

	peers := got["peers"].([]any)
	if len(peers) != 2 {
		t.Fatalf("peers: got %d, want 2", len(peers))
	}
	wantPeer := []string{"name", "public_key", "endpoint", "allowed_ips", "persistent_keepalive_seconds",
		"latest_handshake", "latest_handshake_age_seconds", "rx_bytes", "tx_bytes", "rx_packets",
		"tx_packets", "handshakes_completed", "handshakes_failed", "drops"}
	b0, c0 := peers[0].(map[string]any), peers[1].(map[string]any)
	checkKeys(t, "peer b", b0, wantPeer)
	checkKeys(t, "peer c", c0, wantPeer)
	for k, want := range map[string]any{
		"name": "b", "endpoint": "192.168.100.2:51820", "latest_handshake_age_seconds": float64(12),
		"latest_handshake": "2025-06-01T11:59:47.7Z", "persistent_keepalive_seconds": float64(25),
		"rx_bytes": float64(100), "tx_bytes": float64(200),
	} {
		if b0[k] != want {
			t.Errorf("peer b %s: got %v, want %v", k, b0[k], want)
		}
	}
	if ips := b0["allowed_ips"].([]any); len(ips) != 1 || ips[0] != "10.100.0.2/32" {
		t.Errorf("peer b allowed_ips: got %v", ips)
	}
	// Unknown endpoint and no handshake yet.
	if c0["endpoint"] != "" || c0["latest_handshake"] != nil || c0["latest_handshake_age_seconds"] != nil {
		t.Errorf("peer c: got endpoint %v, handshake %v, age %v; want \"\", null, null",
			c0["endpoint"], c0["latest_handshake"], c0["latest_handshake_age_seconds"])
	}
}

func checkKeys(t *testing.T, what string, m map[string]any, want []string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: no %q field", what, k)
		}
	}
	if len(m) != len(want) {
		t.Errorf("%s: got %d fields, want %d: document new ones in docs/metrics.md", what, len(m), len(want))
	}
}

func startTestServer(t *testing.T) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "ovl0.sock")
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(statstest.Source{Stats: testStats()}, testNode, slog.New(slog.DiscardHandler))
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
	s2.Serve(statstest.Source{Stats: testStats()}, testNode, slog.New(slog.DiscardHandler))
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
