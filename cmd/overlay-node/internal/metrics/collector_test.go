package metrics

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/internal/statstest"
	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/tunnel"
)

// batch builds BatchStats from per-bucket counts (not cumulative), the
// last one being the overflow bucket.
func batch(sum uint64, counts ...uint64) tunnel.BatchStats {
	c := make([]uint64, len(tunnel.BatchBuckets())+1)
	copy(c, counts)
	return tunnel.BatchStats{Counts: c, Sum: sum}
}

func testStats() tunnel.Stats {
	var drops, bDrops tunnel.DropCounts
	drops[tunnel.DropMalformed] = 1000
	drops[tunnel.DropDecrypt] = 3
	drops[tunnel.DropNoRoute] = 7
	bDrops[tunnel.DropDecrypt] = 3
	return tunnel.Stats{
		PublicKey:  statstest.Key(1),
		ListenPort: 51820,
		MTU:        1420,
		Peers: []tunnel.PeerStats{
			{
				Name:                "b",
				PublicKey:           statstest.Key(2),
				Endpoint:            netip.MustParseAddrPort("192.168.100.2:51820"),
				AllowedIPs:          []netip.Prefix{netip.MustParsePrefix("10.100.0.2/32")},
				RxBytes:             4096,
				RxPackets:           30,
				TxBytes:             8192,
				TxPackets:           40,
				HandshakesCompleted: 2,
				HandshakesFailed:    1,
				LastHandshake:       time.Unix(1700000000, 500_000_000),
				Drops:               bDrops,
			},
			{
				Name:      "c",
				PublicKey: statstest.Key(3),
			},
		},
		Drops:             drops,
		CookieRepliesSent: 12,
		// Bucket bounds are 1, 2, 4, ..., 128, then overflow.
		TUNRead:  batch(1+2*3+100*2, 1, 3, 0, 0, 0, 0, 0, 2),
		TUNWrite: batch(0),
		UDPRecv:  batch(5, 5),
		UDPSend:  batch(300, 0, 0, 0, 0, 0, 0, 0, 1, 1),
		Firewall: tunnel.FirewallStats{
			Enabled: true, Reject: true, PolicyHash: "abc123",
			Rules:     []tunnel.RuleStats{{Name: "web-to-db", Pos: "mesh.toml:40", Flows: 5}, {Name: "allow-2", Pos: "mesh.toml:46"}},
			Conntrack: conntrack.Stats{Entries: 4, Evictions: 2, Cut: 1},
		},
	}
}

func newTestCollector() *Collector {
	return NewCollector(statstest.Source{Stats: testStats()},
		control.Node{Version: "1.2.3", Mesh: "demo", Name: "a", Interface: "ovl0", ConfigHash: "abc123", LoadedAt: time.Unix(1600000000, 0)})
}

func TestCollectorPeers(t *testing.T) {
	want := `
# HELP overlay_peer_receive_bytes_total Bytes of authenticated WireGuard datagrams received from the peer.
# TYPE overlay_peer_receive_bytes_total counter
overlay_peer_receive_bytes_total{peer="b"} 4096
overlay_peer_receive_bytes_total{peer="c"} 0
# HELP overlay_peer_transmit_bytes_total Bytes of WireGuard datagrams sent to the peer.
# TYPE overlay_peer_transmit_bytes_total counter
overlay_peer_transmit_bytes_total{peer="b"} 8192
overlay_peer_transmit_bytes_total{peer="c"} 0
# HELP overlay_peer_receive_packets_total Authenticated WireGuard transport datagrams received from the peer, keepalives included.
# TYPE overlay_peer_receive_packets_total counter
overlay_peer_receive_packets_total{peer="b"} 30
overlay_peer_receive_packets_total{peer="c"} 0
# HELP overlay_peer_transmit_packets_total WireGuard transport datagrams sent to the peer, keepalives included.
# TYPE overlay_peer_transmit_packets_total counter
overlay_peer_transmit_packets_total{peer="b"} 40
overlay_peer_transmit_packets_total{peer="c"} 0
# HELP overlay_peer_last_handshake_timestamp_seconds Unix time of the last completed handshake with the peer; 0 if none has completed.
# TYPE overlay_peer_last_handshake_timestamp_seconds gauge
overlay_peer_last_handshake_timestamp_seconds{peer="b"} 1.7000000005e+09
overlay_peer_last_handshake_timestamp_seconds{peer="c"} 0
# HELP overlay_peer_handshakes_completed_total Handshakes completed with the peer, as initiator or responder.
# TYPE overlay_peer_handshakes_completed_total counter
overlay_peer_handshakes_completed_total{peer="b"} 2
overlay_peer_handshakes_completed_total{peer="c"} 0
# HELP overlay_peer_handshakes_failed_total Handshake attempts with the peer that gave up after the rekey attempt time (90 s).
# TYPE overlay_peer_handshakes_failed_total counter
overlay_peer_handshakes_failed_total{peer="b"} 1
overlay_peer_handshakes_failed_total{peer="c"} 0
# HELP overlay_peer_endpoint_info The peer's current UDP endpoint, for peers with a known endpoint; the value is always 1.
# TYPE overlay_peer_endpoint_info gauge
overlay_peer_endpoint_info{endpoint="192.168.100.2:51820",peer="b"} 1
# HELP overlay_peer_info One series per peer, naming its public key; the value is always 1.
# TYPE overlay_peer_info gauge
overlay_peer_info{peer="b",public_key="` + statstest.Key(2).String() + `"} 1
overlay_peer_info{peer="c",public_key="` + statstest.Key(3).String() + `"} 1
# HELP overlay_peer_drops_total Packets to or from the peer that were dropped, by reason. A reason appears once it is first counted.
# TYPE overlay_peer_drops_total counter
overlay_peer_drops_total{peer="b",reason="decrypt_failed"} 3
`
	err := testutil.CollectAndCompare(newTestCollector(), strings.NewReader(want),
		"overlay_peer_receive_bytes_total", "overlay_peer_transmit_bytes_total",
		"overlay_peer_receive_packets_total", "overlay_peer_transmit_packets_total",
		"overlay_peer_last_handshake_timestamp_seconds",
		"overlay_peer_handshakes_completed_total", "overlay_peer_handshakes_failed_total",
		"overlay_peer_endpoint_info", "overlay_peer_info", "overlay_peer_drops_total")
	if err != nil {
		t.Error(err)
	}
}

// Every reason has a node-wide series from the first scrape, so rate()
// and alerts see the first drop.
func TestCollectorDropsEveryReason(t *testing.T) {
	c := newTestCollector()
	if got, want := testutil.CollectAndCount(c, "overlay_drops_total"), len(tunnel.DropReasons()); got != want {
		t.Errorf("overlay_drops_total: got %d series, want %d (one per reason)", got, want)
	}
	var b strings.Builder
	b.WriteString("# HELP overlay_drops_total Packets the node dropped, by reason, including those that could not be tied to a peer.\n")
	b.WriteString("# TYPE overlay_drops_total counter\n")
	st := testStats()
	for _, r := range tunnel.DropReasons() {
		b.WriteString(`overlay_drops_total{reason="` + r.String() + `"} `)
		b.WriteString(strconv.FormatUint(st.Drops[r], 10) + "\n")
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(b.String()), "overlay_drops_total"); err != nil {
		t.Error(err)
	}
}

// Cookie replies are load, not drops: they have their own counter.
func TestCollectorCookieReplies(t *testing.T) {
	want := `
# HELP overlay_cookie_replies_sent_total Handshakes answered with a cookie reply instead of a response, because the node was under load.
# TYPE overlay_cookie_replies_sent_total counter
overlay_cookie_replies_sent_total 12
`
	if err := testutil.CollectAndCompare(newTestCollector(), strings.NewReader(want), "overlay_cookie_replies_sent_total"); err != nil {
		t.Error(err)
	}
}

// The firewall's counters: per rule, per direction, the table.
func TestCollectorFirewall(t *testing.T) {
	st := testStats()
	st.Firewall.Conntrack.Denied[conntrack.In][conntrack.DenyPolicy] = 7
	st.Firewall.Conntrack.Denied[conntrack.In][conntrack.DenyTCPNotSYN] = 2
	st.Firewall.Conntrack.Denied[conntrack.Out][conntrack.DenyPolicy] = 3
	c := NewCollector(statstest.Source{Stats: st}, control.Node{})
	want := `
# HELP overlay_policy_info The [[allow]] rules in force, by hash, so that nodes with different rules show; the value is always 1. Absent without rules.
# TYPE overlay_policy_info gauge
overlay_policy_info{hash="abc123"} 1
# HELP overlay_policy_flows_total Flows each rule admitted, by rule name, since the rule was loaded.
# TYPE overlay_policy_flows_total counter
overlay_policy_flows_total{rule="allow-2"} 0
overlay_policy_flows_total{rule="web-to-db"} 5
# HELP overlay_policy_denied_packets_total Packets the firewall denied, by direction: in from the mesh, out to it.
# TYPE overlay_policy_denied_packets_total counter
overlay_policy_denied_packets_total{direction="in"} 9
overlay_policy_denied_packets_total{direction="out"} 3
# HELP overlay_conntrack_entries Flows in the firewall's connection table.
# TYPE overlay_conntrack_entries gauge
overlay_conntrack_entries 4
# HELP overlay_conntrack_evictions_total Live flows removed from the full connection table to make room for a new one.
# TYPE overlay_conntrack_evictions_total counter
overlay_conntrack_evictions_total 2
# HELP overlay_conntrack_cut_flows_total Tracked flows cut because the rules loaded since they opened deny them.
# TYPE overlay_conntrack_cut_flows_total counter
overlay_conntrack_cut_flows_total 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "overlay_policy_info", "overlay_policy_flows_total",
		"overlay_policy_denied_packets_total", "overlay_conntrack_entries", "overlay_conntrack_evictions_total",
		"overlay_conntrack_cut_flows_total"); err != nil {
		t.Error(err)
	}
	st.Firewall = tunnel.FirewallStats{}
	if n := testutil.CollectAndCount(NewCollector(statstest.Source{Stats: st}, control.Node{}), "overlay_policy_info", "overlay_policy_flows_total"); n != 0 {
		t.Errorf("without rules: got %d policy info and flow series, want 0", n)
	}
}

// The engine's per-bucket counts become cumulative buckets; the overflow
// bucket only shows in the count (+Inf).
func TestCollectorBatchHistograms(t *testing.T) {
	want := `
# HELP overlay_batch_size_packets Packets per batch at each I/O stage: one observation per TUN read or write, or per UDP receive or send call.
# TYPE overlay_batch_size_packets histogram
overlay_batch_size_packets_bucket{stage="tun_read",le="1"} 1
overlay_batch_size_packets_bucket{stage="tun_read",le="2"} 4
overlay_batch_size_packets_bucket{stage="tun_read",le="4"} 4
overlay_batch_size_packets_bucket{stage="tun_read",le="8"} 4
overlay_batch_size_packets_bucket{stage="tun_read",le="16"} 4
overlay_batch_size_packets_bucket{stage="tun_read",le="32"} 4
overlay_batch_size_packets_bucket{stage="tun_read",le="64"} 4
overlay_batch_size_packets_bucket{stage="tun_read",le="128"} 6
overlay_batch_size_packets_bucket{stage="tun_read",le="+Inf"} 6
overlay_batch_size_packets_sum{stage="tun_read"} 207
overlay_batch_size_packets_count{stage="tun_read"} 6
overlay_batch_size_packets_bucket{stage="tun_write",le="1"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="2"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="4"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="8"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="16"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="32"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="64"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="128"} 0
overlay_batch_size_packets_bucket{stage="tun_write",le="+Inf"} 0
overlay_batch_size_packets_sum{stage="tun_write"} 0
overlay_batch_size_packets_count{stage="tun_write"} 0
overlay_batch_size_packets_bucket{stage="udp_receive",le="1"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="2"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="4"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="8"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="16"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="32"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="64"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="128"} 5
overlay_batch_size_packets_bucket{stage="udp_receive",le="+Inf"} 5
overlay_batch_size_packets_sum{stage="udp_receive"} 5
overlay_batch_size_packets_count{stage="udp_receive"} 5
overlay_batch_size_packets_bucket{stage="udp_send",le="1"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="2"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="4"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="8"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="16"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="32"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="64"} 0
overlay_batch_size_packets_bucket{stage="udp_send",le="128"} 1
overlay_batch_size_packets_bucket{stage="udp_send",le="+Inf"} 2
overlay_batch_size_packets_sum{stage="udp_send"} 300
overlay_batch_size_packets_count{stage="udp_send"} 2
`
	if err := testutil.CollectAndCompare(newTestCollector(), strings.NewReader(want), "overlay_batch_size_packets"); err != nil {
		t.Error(err)
	}
}

func TestCollectorNodeAndBuild(t *testing.T) {
	want := `
# HELP overlay_build_info Build of the running overlay-node; the value is always 1.
# TYPE overlay_build_info gauge
overlay_build_info{goversion="` + runtime.Version() + `",version="1.2.3"} 1
# HELP overlay_node_info This node and the mesh file it runs; the value is always 1.
# TYPE overlay_node_info gauge
overlay_node_info{config_hash="abc123",interface="ovl0",mesh="demo",node="a",public_key="` + statstest.Key(1).String() + `"} 1
# HELP overlay_config_last_load_timestamp_seconds Unix time the mesh file in use was loaded.
# TYPE overlay_config_last_load_timestamp_seconds gauge
overlay_config_last_load_timestamp_seconds 1.6e+09
`
	c := newTestCollector()
	names := []string{"overlay_build_info", "overlay_node_info", "overlay_config_last_load_timestamp_seconds"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// A reload replaces the node's identity.
	c.SetNode(control.Node{Version: "1.2.3", Mesh: "demo", Name: "a", Interface: "ovl0", ConfigHash: "def456", LoadedAt: time.Unix(1600000100, 0)})
	want = strings.NewReplacer("abc123", "def456", "1.6e+09", "1.6000001e+09").Replace(want)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Errorf("after SetNode: %v", err)
	}
}

// promlint is what `promtool check metrics` runs.
func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(newTestCollector())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	reg := NewRegistry(newTestCollector())
	problems, err = testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("registry: %s: %s", p.Metric, p.Text)
	}
}

// The registry gathers without error: descriptors and metrics agree, and
// nothing collides with the Go and process collectors.
func TestRegistryGathers(t *testing.T) {
	reg := NewRegistry(newTestCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, want := range []string{"overlay_peer_receive_bytes_total", "go_goroutines", "process_open_fds"} {
		if !seen[want] && !(want == "process_open_fds" && runtime.GOOS != "linux") {
			t.Errorf("registry lacks %s", want)
		}
	}
}

// docs/metrics.md documents every metric this collector exports.
func TestEveryMetricDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newTestCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != len(allDescs) {
		t.Errorf("test stats export %d families, the collector describes %d: extend testStats", len(mfs), len(allDescs))
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("docs/metrics.md does not document %s", mf.GetName())
		}
	}
}

// The example Grafana dashboard queries only metrics that exist, and every
// part of the list has a panel.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "examples", "grafana", "overlay-node.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Type    string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("overlay-node.json: %v", err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newTestCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, mf := range mfs {
		known[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				known[mf.GetName()+s] = true
			}
		}
	}
	used := map[string]bool{}
	name := regexp.MustCompile(`overlay_[a-z_]+`)
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				if !known[m] {
					t.Errorf("panel %q queries %s, which overlay-node does not export", p.Title, m)
				}
				used[m] = true
			}
		}
	}
	for _, want := range []string{
		"overlay_peer_transmit_bytes_total", "overlay_peer_receive_bytes_total",
		"overlay_peer_last_handshake_timestamp_seconds", "overlay_drops_total",
		"overlay_batch_size_packets_bucket",
	} {
		if !used[want] {
			t.Errorf("no panel uses %s", want)
		}
	}
}
