//go:build netbench

package bench_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// teardownMargin is how long before the test binary's -timeout the topology
// tears itself down: a binary that panics on -timeout runs no t.Cleanup.
// nstest's own watchdog stops the processes it started 3 s before the
// deadline; this runs first and kills whatever is left in the namespaces.
const teardownMargin = 5 * time.Second

// A vethPair is two host namespaces, A and B, joined by one veth pair whose
// ends are eth0 in each. The hosts are nstest hosts, so their Exec and Start
// methods run commands inside them.
type vethPair struct {
	A, B *nstest.Host
}

// newVethPair creates the topology, skipping t unless it runs as root. t's
// cleanup, or the watchdog if the binary is about to time out, deletes both
// namespaces after killing any process still inside.
//
// The namespaces are named nst-PID-bench-ROLE, nstest's scheme, so that
// nstest's sweeper removes them if this binary dies before cleaning up. That
// sweep runs once per binary, on nstest's first build or topology; callers
// build the binaries before calling newVethPair, or the sweep would take
// these namespaces for leftovers of an earlier binary with the same PID.
func newVethPair(t *testing.T) *vethPair {
	t.Helper()
	nstest.RequireRoot(t)
	prefix := fmt.Sprintf("nst-%d-bench-", os.Getpid())
	names := []string{prefix + "a", prefix + "b"}

	var once sync.Once
	teardown := func() {
		once.Do(func() {
			for _, ns := range names {
				deleteNetns(ns)
			}
		})
	}
	t.Cleanup(teardown)
	if deadline, ok := t.Deadline(); ok {
		timer := time.AfterFunc(time.Until(deadline)-teardownMargin, func() {
			fmt.Fprintln(os.Stderr, "bench: test binary is about to time out; deleting the namespaces")
			teardown()
		})
		t.Cleanup(func() { timer.Stop() })
	}

	for _, ns := range names {
		mustRun(t, "ip", "netns", "add", ns)
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "link", "add", "eth0", "netns", names[0], "type", "veth",
		"peer", "name", "eth0", "netns", names[1])
	p := &vethPair{
		A: &nstest.Host{Name: names[0], Iface: "eth0", Addr: underlayA.Addr(), Subnet: underlayA.Masked()},
		B: &nstest.Host{Name: names[1], Iface: "eth0", Addr: underlayB.Addr(), Subnet: underlayB.Masked()},
	}
	for i, h := range []*nstest.Host{p.A, p.B} {
		pfx := []netip.Prefix{underlayA, underlayB}[i]
		mustRun(t, "ip", "-n", h.Name, "addr", "add", pfx.String(), "dev", h.Iface)
		mustRun(t, "ip", "-n", h.Name, "link", "set", h.Iface, "up")
	}
	if err := nstest.Ping(t, p.A, p.B.Addr.String()); err != nil {
		t.Fatalf("underlay: %v", err)
	}
	return p
}

// deleteNetns kills every process left in the namespace ns, by PID, and
// deletes it, and with it every link inside.
func deleteNetns(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	exec.Command("ip", "netns", "delete", ns).Run()
}

// mustRun runs a setup command in the host namespace, failing t on error.
func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// run runs name with args inside h, bounded by timeout, and returns its
// combined output; the error includes the output.
func run(ctx context.Context, h *nstest.Host, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := h.Exec(ctx, name, args...)
	return string(out), err
}
