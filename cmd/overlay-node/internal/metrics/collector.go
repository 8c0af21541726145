// Package metrics exports a running node to Prometheus: a collector that
// reads the engine's atomic counters at scrape time, and the HTTP server
// that serves them.
//
// Nothing here runs on the packet path. The engine counts with atomics it
// owns; a scrape calls Device.Snapshot once and turns the result into
// constant metrics, so the cost of a scrape is paid by the scraper and the
// collector holds no state that could drift from the engine's.
//
// Every metric is listed, with its type, labels and meaning, in
// docs/metrics.md. Names are part of the command contract: dashboards and
// alerts depend on them.
package metrics

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/tunnel"
)

// Source is what the collector reads: *tunnel.Device satisfies it.
type Source interface {
	Snapshot() tunnel.Stats
}

// Batch stages, the values of the stage label of overlay_batch_size_packets.
const (
	StageTUNRead    = "tun_read"
	StageTUNWrite   = "tun_write"
	StageUDPReceive = "udp_receive"
	StageUDPSend    = "udp_send"
)

const namespace = "overlay"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

// The descriptors never change, so they are built once.
var (
	buildInfoDesc = desc("build_info",
		"Build of the running overlay-node; the value is always 1.", "version", "goversion")
	nodeInfoDesc = desc("node_info",
		"This node and the mesh file it runs; the value is always 1.",
		"mesh", "node", "interface", "public_key", "config_hash")
	configLoadDesc = desc("config_last_load_timestamp_seconds",
		"Unix time the mesh file in use was loaded.")
	meshSourceDesc = desc("mesh_source_info",
		"Where the mesh comes from, file or etcd; the value is always 1.", "source")
	meshRevisionDesc = desc("mesh_revision",
		"The etcd revision of the mesh in force; 0 for a mesh file.")
	meshReconnectsDesc = desc("mesh_watch_reconnects_total",
		"Times the watch of the mesh source was lost and the mesh read afresh.")

	peerInfoDesc = desc("peer_info",
		"One series per peer, naming its public key; the value is always 1.", "peer", "public_key")
	peerEndpointDesc = desc("peer_endpoint_info",
		"The peer's current UDP endpoint, for peers with a known endpoint; the value is always 1.",
		"peer", "endpoint")
	peerRxBytesDesc = desc("peer_receive_bytes_total",
		"Bytes of authenticated WireGuard datagrams received from the peer.", "peer")
	peerTxBytesDesc = desc("peer_transmit_bytes_total",
		"Bytes of WireGuard datagrams sent to the peer.", "peer")
	peerRxPacketsDesc = desc("peer_receive_packets_total",
		"Authenticated WireGuard transport datagrams received from the peer, keepalives included.", "peer")
	peerTxPacketsDesc = desc("peer_transmit_packets_total",
		"WireGuard transport datagrams sent to the peer, keepalives included.", "peer")
	peerHandshakeDesc = desc("peer_last_handshake_timestamp_seconds",
		"Unix time of the last completed handshake with the peer; 0 if none has completed.", "peer")
	peerHandshakesDesc = desc("peer_handshakes_completed_total",
		"Handshakes completed with the peer, as initiator or responder.", "peer")
	peerHandshakeFailsDesc = desc("peer_handshakes_failed_total",
		"Handshake attempts with the peer that gave up after the rekey attempt time (90 s).", "peer")
	peerDropsDesc = desc("peer_drops_total",
		"Packets to or from the peer that were dropped, by reason. A reason appears once it is first counted.",
		"peer", "reason")

	dropsDesc = desc("drops_total",
		"Packets the node dropped, by reason, including those that could not be tied to a peer.", "reason")
	cookieRepliesDesc = desc("cookie_replies_sent_total",
		"Handshakes answered with a cookie reply instead of a response, because the node was under load.")
	batchDesc = desc("batch_size_packets",
		"Packets per batch at each I/O stage: one observation per TUN read or write, or per UDP receive or send call.",
		"stage")

	policyInfoDesc = desc("policy_info",
		"The [[allow]] rules in force, by hash, so that nodes with different rules show; the value is always 1. Absent without rules.",
		"hash")
	policyFlowsDesc = desc("policy_flows_total",
		"Flows each rule admitted, by rule name, since the rule was loaded.", "rule")
	policyDeniedDesc = desc("policy_denied_packets_total",
		"Packets the firewall denied, by direction: in from the mesh, out to it.", "direction")
	conntrackEntriesDesc = desc("conntrack_entries",
		"Flows in the firewall's connection table.")
	conntrackEvictionsDesc = desc("conntrack_evictions_total",
		"Live flows removed from the full connection table to make room for a new one.")
	conntrackCutDesc = desc("conntrack_cut_flows_total",
		"Tracked flows cut because the rules loaded since they opened deny them.")

	allDescs = []*prometheus.Desc{
		policyInfoDesc, policyFlowsDesc, policyDeniedDesc,
		conntrackEntriesDesc, conntrackEvictionsDesc, conntrackCutDesc,
		buildInfoDesc, nodeInfoDesc, configLoadDesc, meshSourceDesc, meshRevisionDesc, meshReconnectsDesc,
		peerInfoDesc, peerEndpointDesc, peerRxBytesDesc, peerTxBytesDesc,
		peerRxPacketsDesc, peerTxPacketsDesc, peerHandshakeDesc,
		peerHandshakesDesc, peerHandshakeFailsDesc, peerDropsDesc,
		dropsDesc, cookieRepliesDesc, batchDesc,
	}
)

// Collector is a prometheus.Collector for one node. It is safe for
// concurrent scrapes.
type Collector struct {
	// Immutable.
	src Source

	// Atomic: replaced whole when the mesh file is reloaded.
	node atomic.Pointer[control.Node]
}

// NewCollector returns a collector that reads src at every scrape. The
// node's Version and the Go runtime's are its build.
func NewCollector(src Source, node control.Node) *Collector {
	c := &Collector{src: src}
	c.SetNode(node)
	return c
}

// NewRegistry returns a registry, private to the caller, holding c, more
// (such as the DNS server's collector), and the Go runtime and process
// collectors (go_*, process_*: memory, CPU, open
// files), which an operator of a long-running daemon expects beside its own
// metrics.
func NewRegistry(c *Collector, more ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(more...)
	reg.MustRegister(
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// SetNode replaces the node's identity, as after a reload.
func (c *Collector) SetNode(n control.Node) { c.node.Store(&n) }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Snapshot, turned into
// constant metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Snapshot()
	node := c.node.Load()

	ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, node.Version, runtime.Version())
	ch <- prometheus.MustNewConstMetric(nodeInfoDesc, prometheus.GaugeValue, 1,
		node.Mesh, node.Name, node.Interface, st.PublicKey.String(), node.ConfigHash)
	if !node.LoadedAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(configLoadDesc, prometheus.GaugeValue, unixSeconds(node.LoadedAt))
	}
	if node.Source != "" {
		var reconnects uint64
		if node.Reconnects != nil {
			reconnects = node.Reconnects()
		}
		ch <- prometheus.MustNewConstMetric(meshSourceDesc, prometheus.GaugeValue, 1, node.Source)
		ch <- prometheus.MustNewConstMetric(meshRevisionDesc, prometheus.GaugeValue, float64(node.Revision))
		ch <- prometheus.MustNewConstMetric(meshReconnectsDesc, prometheus.CounterValue, float64(reconnects))
	}

	for i := range st.Peers {
		p := &st.Peers[i]
		counter := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), p.Name)
		}
		ch <- prometheus.MustNewConstMetric(peerInfoDesc, prometheus.GaugeValue, 1, p.Name, p.PublicKey.String())
		if p.Endpoint.IsValid() {
			ch <- prometheus.MustNewConstMetric(peerEndpointDesc, prometheus.GaugeValue, 1, p.Name, p.Endpoint.String())
		}
		counter(peerRxBytesDesc, p.RxBytes)
		counter(peerTxBytesDesc, p.TxBytes)
		counter(peerRxPacketsDesc, p.RxPackets)
		counter(peerTxPacketsDesc, p.TxPackets)
		counter(peerHandshakesDesc, p.HandshakesCompleted)
		counter(peerHandshakeFailsDesc, p.HandshakesFailed)
		var hs float64
		if !p.LastHandshake.IsZero() {
			hs = unixSeconds(p.LastHandshake)
		}
		ch <- prometheus.MustNewConstMetric(peerHandshakeDesc, prometheus.GaugeValue, hs, p.Name)
		// Every reason for every peer would multiply the series by the
		// number of reasons, most of them forever zero; the node-wide
		// overlay_drops_total has every reason from the start for alerts.
		for _, r := range tunnel.DropReasons() {
			if n := p.Drops[r]; n > 0 {
				ch <- prometheus.MustNewConstMetric(peerDropsDesc, prometheus.CounterValue, float64(n), p.Name, r.String())
			}
		}
	}

	for _, r := range tunnel.DropReasons() {
		ch <- prometheus.MustNewConstMetric(dropsDesc, prometheus.CounterValue, float64(st.Drops[r]), r.String())
	}
	ch <- prometheus.MustNewConstMetric(cookieRepliesDesc, prometheus.CounterValue, float64(st.CookieRepliesSent))

	collectFirewall(ch, &st.Firewall)

	ch <- batchHistogram(st.TUNRead, StageTUNRead)
	ch <- batchHistogram(st.TUNWrite, StageTUNWrite)
	ch <- batchHistogram(st.UDPRecv, StageUDPReceive)
	ch <- batchHistogram(st.UDPSend, StageUDPSend)
}

// collectFirewall exports the firewall's counters. The counters of a
// table whose rules were unloaded stay, so that they never go backwards.
func collectFirewall(ch chan<- prometheus.Metric, f *tunnel.FirewallStats) {
	if f.Enabled {
		ch <- prometheus.MustNewConstMetric(policyInfoDesc, prometheus.GaugeValue, 1, f.PolicyHash)
	}
	for _, r := range f.Rules {
		ch <- prometheus.MustNewConstMetric(policyFlowsDesc, prometheus.CounterValue, float64(r.Flows), r.Name)
	}
	for _, dir := range []conntrack.Direction{conntrack.In, conntrack.Out} {
		ch <- prometheus.MustNewConstMetric(policyDeniedDesc, prometheus.CounterValue, float64(f.Denied(dir)), dir.String())
	}
	ch <- prometheus.MustNewConstMetric(conntrackEntriesDesc, prometheus.GaugeValue, float64(f.Conntrack.Entries))
	ch <- prometheus.MustNewConstMetric(conntrackEvictionsDesc, prometheus.CounterValue, float64(f.Conntrack.Evictions))
	ch <- prometheus.MustNewConstMetric(conntrackCutDesc, prometheus.CounterValue, float64(f.Conntrack.Cut))
}

// batchHistogram turns the engine's per-bucket counts, with their extra
// overflow bucket, into a Prometheus histogram with cumulative buckets.
func batchHistogram(b tunnel.BatchStats, stage string) prometheus.Metric {
	bounds := tunnel.BatchBuckets()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, n := range b.Counts {
		cum += n
		if i < len(bounds) {
			buckets[float64(bounds[i])] = cum
		}
	}
	// cum now includes the overflow bucket: it is the +Inf bucket, the count.
	return prometheus.MustNewConstHistogram(batchDesc, cum, float64(b.Sum), buckets, stage)
}

// unixSeconds is t as fractional Unix seconds, the Prometheus timestamp unit.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
