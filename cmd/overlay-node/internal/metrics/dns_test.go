package metrics

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/overlay-node/overlay-node/dnsserver"
)

func testDNSStats() *dnsserver.Stats {
	st := new(dnsserver.Stats)
	st.Types[0].Add(5)                   // A
	st.Types[len(st.Types)-1].Add(2)     // other
	st.Rcodes[dns.RcodeSuccess].Add(4)   // NOERROR
	st.Rcodes[dns.RcodeNameError].Add(3) // NXDOMAIN
	st.Rcodes[dns.RcodeNotAuth].Add(1)   // not one the server sends; shown once counted
	st.Forwards.Add(7)
	st.ForwardFailures.Add(1)
	st.Malformed.Add(9)
	st.Truncated.Add(2)
	st.Dropped.Add(6)
	st.ZoneLatency.Counts[0].Add(3) // ≤ 50 µs
	st.ZoneLatency.Counts[4].Add(1) // ≤ 1 ms
	st.ZoneLatency.Sum.Add(int64(1200 * time.Microsecond))
	st.ForwardLatency.Counts[len(dnsserver.LatencyBounds)].Add(1) // over 2.5 s
	st.ForwardLatency.Sum.Add(int64(3 * time.Second))
	return st
}

func TestDNSCollector(t *testing.T) {
	c := NewDNSCollector(testDNSStats())
	want := `
# HELP overlay_dns_forwards_total DNS queries for names outside the mesh domain sent on to an upstream resolver.
# TYPE overlay_dns_forwards_total counter
overlay_dns_forwards_total 7
# HELP overlay_dns_malformed_total DNS messages that did not parse or were not queries: answered FORMERR or dropped.
# TYPE overlay_dns_malformed_total counter
overlay_dns_malformed_total 9
# HELP overlay_dns_responses_total DNS replies the node's server sent, by response code (NOERROR, NXDOMAIN, REFUSED, ...).
# TYPE overlay_dns_responses_total counter
overlay_dns_responses_total{rcode="FORMERR"} 0
overlay_dns_responses_total{rcode="NOERROR"} 4
overlay_dns_responses_total{rcode="NOTIMP"} 0
overlay_dns_responses_total{rcode="NXDOMAIN"} 3
overlay_dns_responses_total{rcode="REFUSED"} 0
overlay_dns_responses_total{rcode="SERVFAIL"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"overlay_dns_forwards_total", "overlay_dns_malformed_total", "overlay_dns_responses_total"); err == nil {
		t.Error("the rcode NOTAUTH, counted once, is missing from the output yet the comparison passed")
	}
	want = strings.Replace(want, `overlay_dns_responses_total{rcode="FORMERR"} 0`,
		`overlay_dns_responses_total{rcode="NOTAUTH"} 1`+"\n"+`overlay_dns_responses_total{rcode="FORMERR"} 0`, 1)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"overlay_dns_forwards_total", "overlay_dns_malformed_total", "overlay_dns_responses_total"); err != nil {
		t.Error(err)
	}
	h := histogram(t, c, "zone")
	if h.GetSampleCount() != 4 || h.GetSampleSum() != 0.0012 {
		t.Errorf("zone latency: got count %d sum %v, want 4 and 0.0012", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		want := uint64(3)
		if b.GetUpperBound() >= 0.001 {
			want = 4
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("zone latency bucket le=%v: got %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if h := histogram(t, c, "forward"); h.GetSampleCount() != 1 || h.GetBucket()[len(h.GetBucket())-1].GetCumulativeCount() != 0 {
		t.Errorf("forward latency: got %v, want one observation over every bound", h)
	}
	for name, want := range map[string]float64{
		`overlay_dns_queries_total{type="A"}`:     5,
		`overlay_dns_queries_total{type="other"}`: 2,
		`overlay_dns_queries_total{type="SRV"}`:   0,
		`overlay_dns_forward_failures_total`:      1,
		`overlay_dns_truncated_total`:             2,
		`overlay_dns_dropped_total`:               6,
	} {
		if got := sampleValue(t, c, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// sampleValue returns the value of the one series named like
// name{label="value"}.
func sampleValue(t *testing.T, c prometheus.Collector, series string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	name, label, _ := strings.Cut(series, "{")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var l string
			for _, lp := range m.GetLabel() {
				l = lp.GetName() + `="` + lp.GetValue() + `"}`
			}
			if l == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

// histogram returns the overlay_dns_response_seconds series of source.
func histogram(t *testing.T, c prometheus.Collector, source string) *dto.Histogram {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "overlay_dns_response_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == source {
				return m.GetHistogram()
			}
		}
	}
	t.Fatalf("no overlay_dns_response_seconds{source=%q}", source)
	return nil
}

// docs/metrics.md documents every DNS metric.
func TestEveryDNSMetricDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewDNSCollector(testDNSStats()))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != len(dnsDescs) {
		t.Errorf("test stats export %d families, the collector describes %d: extend testDNSStats", len(mfs), len(dnsDescs))
	}
	for _, mf := range mfs {
		if !strings.Contains(string(doc), "`"+mf.GetName()+"`") {
			t.Errorf("docs/metrics.md does not document %s", mf.GetName())
		}
	}
}
