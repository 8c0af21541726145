//go:build netbench

package bench_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The underlay: two namespaces joined by a single veth pair, with no bridge,
// so the raw path between them is exactly one veth hop. Addresses come from
// 198.18.0.0/15, the range RFC 2544 sets aside for benchmarking, and are only
// ever assigned inside the namespaces.
var (
	underlayA = netip.MustParsePrefix("198.18.0.1/24")
	underlayB = netip.MustParsePrefix("198.18.0.2/24")
)

// A vethPair is two host namespaces, A and B, joined by one veth pair whose
// ends are eth0 in each. The hosts are nstest hosts, so their Exec and Start
// methods run commands inside them.
type vethPair struct {
	A, B *nstest.Host
	// Internet is a namespace behind B that owns floodSources: where the
	// handshake flood comes from.
	Internet *nstest.Site
}

// floodSources is the prefix the handshake flood's spoofed sources come
// from, routed to B from beyond the veth; also in RFC 2544's range.
var floodSources = netip.MustParsePrefix("198.19.0.0/24")

// newVethPair creates the topology, skipping t unless it runs as root.
// nstest deletes both namespaces, after killing any process inside, in t's
// cleanup or when the binary is about to time out.
func newVethPair(t *testing.T) *vethPair {
	t.Helper()
	a, b := nstest.NewLink(t, underlayA, underlayB)
	p := &vethPair{A: a, B: b, Internet: nstest.AttachNetwork(t, b, floodSources)}
	if err := nstest.Ping(t, p.A, p.B.Addr.String()); err != nil {
		t.Fatalf("underlay: %v", err)
	}
	return p
}

// run runs name with args inside h, bounded by timeout, and returns its
// combined output; the error includes the output.
func run(ctx context.Context, h *nstest.Host, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := h.Exec(ctx, name, args...)
	return string(out), err
}
