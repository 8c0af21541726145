package main

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/internal/statstest"
	"github.com/overlay-node/overlay-node/tunnel"
)

var (
	statusNow  = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	statusNode = control.Node{Version: "1.2.3", Mesh: "demo", Name: "a", Interface: "ovl0",
		ConfigHash: "abc123", LoadedAt: time.Date(2025, 6, 1, 11, 0, 0, 0, time.UTC),
		Source: "etcd", Revision: 42, Reconnects: func() uint64 { return 3 }}
)

func engineStats() tunnel.Stats {
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
				LastHandshake:       statusNow.Add(-12*time.Second - 300*time.Millisecond),
				Drops:               bDrops,
			},
			{Name: "c", PublicKey: statstest.Key(3)},
		},
	}
}

// The JSON field names are a contract: docs/metrics.md and scripts use
// them. A change here must be a deliberate one.
func TestStatusJSON(t *testing.T) {
	b, err := json.Marshal(newStatus(engineStats(), statusNode, statusNow))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantTop := []string{"schema", "time", "version", "mesh", "node", "interface", "public_key",
		"listen_port", "mtu", "config_hash", "config_loaded", "mesh_file",
		"mesh_source", "mesh_revision", "mesh_watch_reconnects", "addresses", "subnets", "routes",
		"peers", "drops", "firewall", "cookie_replies_sent", "dns"}
	checkKeys(t, "status", got, wantTop)
	checkKeys(t, "firewall", got["firewall"].(map[string]any), []string{"enabled", "deny", "policy_hash", "rules",
		"conntrack_entries", "conntrack_evictions", "conntrack_cut", "denied_in", "denied_out"})
	if got["mesh_source"] != "etcd" || got["mesh_revision"] != float64(42) || got["mesh_watch_reconnects"] != float64(3) {
		t.Errorf("status: mesh source fields: got %v %v %v", got["mesh_source"], got["mesh_revision"], got["mesh_watch_reconnects"])
	}
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
		"tx_packets", "handshakes_completed", "handshakes_failed", "handshake_attempts_unanswered", "drops"}
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
