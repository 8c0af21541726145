package metrics

import (
	"strconv"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlay-node/overlay-node/dnsserver"
)

// The DNS server's metrics: overlay_dns_*.
var (
	dnsQueriesDesc = desc("dns_queries_total",
		"DNS queries the node's server parsed, by query type; types not listed on their own count as \"other\".", "type")
	dnsResponsesDesc = desc("dns_responses_total",
		"DNS replies the node's server sent, by response code (NOERROR, NXDOMAIN, REFUSED, ...).", "rcode")
	dnsForwardsDesc = desc("dns_forwards_total",
		"DNS queries for names outside the mesh domain sent on to an upstream resolver.")
	dnsForwardFailuresDesc = desc("dns_forward_failures_total",
		"Forwarded DNS queries answered SERVFAIL: every upstream failed, or too many forwards were in flight.")
	dnsMalformedDesc = desc("dns_malformed_total",
		"DNS messages that did not parse or were not queries: answered FORMERR or dropped.")
	dnsTruncatedDesc = desc("dns_truncated_total",
		"UDP DNS replies cut to the client's size with the TC flag set, for the client to retry over TCP.")
	dnsDroppedDesc = desc("dns_dropped_total",
		"DNS queries or TCP connections not served because the server was at its bound.")
	dnsLatencyDesc = desc("dns_response_seconds",
		"Time the node's DNS server took to answer a query, from parse to reply, by where the answer came from: zone or forward.",
		"source")

	dnsDescs = []*prometheus.Desc{
		dnsQueriesDesc, dnsResponsesDesc, dnsForwardsDesc, dnsForwardFailuresDesc,
		dnsMalformedDesc, dnsTruncatedDesc, dnsDroppedDesc, dnsLatencyDesc,
	}
)

// DNSCollector is a prometheus.Collector for the node's DNS server. It
// reads the server's atomic counters at scrape time.
type DNSCollector struct {
	st *dnsserver.Stats // immutable; the counters are atomic
}

// NewDNSCollector returns a collector of st, the counters of the node's DNS
// server.
func NewDNSCollector(st *dnsserver.Stats) *DNSCollector { return &DNSCollector{st: st} }

// Describe implements prometheus.Collector.
func (c *DNSCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range dnsDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector. The response codes the server
// sends always appear, others once counted.
func (c *DNSCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for i := range c.st.Types {
		counter(dnsQueriesDesc, c.st.Types[i].Load(), dnsserver.TypeName(i))
	}
	for rc := range c.st.Rcodes {
		n := c.st.Rcodes[rc].Load()
		if n == 0 && rc > dns.RcodeRefused {
			continue
		}
		name, known := dns.RcodeToString[rc]
		if !known {
			name = "RCODE" + strconv.Itoa(rc)
		}
		counter(dnsResponsesDesc, n, name)
	}
	counter(dnsForwardsDesc, c.st.Forwards.Load())
	counter(dnsForwardFailuresDesc, c.st.ForwardFailures.Load())
	counter(dnsMalformedDesc, c.st.Malformed.Load())
	counter(dnsTruncatedDesc, c.st.Truncated.Load())
	counter(dnsDroppedDesc, c.st.Dropped.Load())
	ch <- latencyHistogram(&c.st.ZoneLatency, "zone")
	ch <- latencyHistogram(&c.st.ForwardLatency, "forward")
}

// latencyHistogram turns the server's per-bucket counts, with their extra
// overflow bucket, into a Prometheus histogram in seconds.
func latencyHistogram(l *dnsserver.Latency, source string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(dnsserver.LatencyBounds))
	var cum uint64
	for i := range l.Counts {
		cum += l.Counts[i].Load()
		if i < len(dnsserver.LatencyBounds) {
			buckets[dnsserver.LatencyBounds[i].Seconds()] = cum
		}
	}
	return prometheus.MustNewConstHistogram(dnsLatencyDesc, cum, float64(l.Sum.Load())/1e9, buckets, source)
}
