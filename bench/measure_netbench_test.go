//go:build netbench

package bench_test

// Measurement primitives: iperf3 and ping runs inside a namespace, and the
// per-process and per-interface counters the kernel keeps in /proc and /sys.
// Each returns plain numbers; sidebyside_netbench_test.go decides what to
// measure when.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// iperfPort is iperf3's default port; each round starts its own server.
const iperfPort = "5201"

// startIperfServer runs an iperf3 server in h, bound to addr (an overlay
// address, so a test can never be served over the raw underlay by mistake),
// and waits until it listens. t's cleanup stops it.
func startIperfServer(t *testing.T, h *nstest.Host, addr netip.Addr) {
	t.Helper()
	proc := h.Start(t, "iperf3", "-s", "-B", addr.String(), "-p", iperfPort)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out, err := run(t.Context(), h, 2*time.Second, "ss", "-Hltn", "sport", "=", ":"+iperfPort)
		if err == nil && strings.Contains(out, iperfPort) {
			return
		}
		if proc.Wait(20*time.Millisecond) != nstest.ErrRunning {
			break
		}
	}
	t.Fatalf("iperf3 server in %s is not listening on %s:%s; output:\n%s", h.Name, addr, iperfPort, proc.Output())
}

// iperfResult is what the receiving side of one iperf3 run counted, and for
// TCP the sender's retransmits.
type iperfResult struct {
	Seconds       float64 `json:"seconds"`
	Bytes         float64 `json:"bytes"`
	BitsPerSecond float64 `json:"bits_per_second"`
	// UDP only.
	Packets     float64 `json:"packets"`
	LostPackets float64 `json:"lost_packets"`
	LostPercent float64 `json:"lost_percent"`
	// TCP only, from the sender's sums.
	Retransmits float64
}

// receivedPPS is the rate of UDP datagrams that arrived.
func (r iperfResult) receivedPPS() float64 {
	return (r.Packets - r.LostPackets) / r.Seconds
}

// iperf3 runs an iperf3 client in h against the server at addr for secs
// seconds, with extra flags (-P 4, -u …), and returns the receiver's sums.
func iperf3(ctx context.Context, h *nstest.Host, addr netip.Addr, secs int, extra ...string) (iperfResult, error) {
	args := append([]string{"-c", addr.String(), "-p", iperfPort, "-t", strconv.Itoa(secs),
		"-J", "--connect-timeout", "3000"}, extra...)
	out, err := run(ctx, h, time.Duration(secs)*time.Second+20*time.Second, "iperf3", args...)
	// -J reports errors in the JSON too, which says more than the exit
	// status; stderr may precede it, so decode from the first brace.
	var doc struct {
		Error string `json:"error"`
		End   struct {
			SumReceived iperfResult `json:"sum_received"`
			SumSent     struct {
				Retransmits float64 `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	i := strings.IndexByte(out, '{')
	if i < 0 {
		return iperfResult{}, fmt.Errorf("iperf3 %s: no JSON output: %v", strings.Join(extra, " "), err)
	}
	if derr := json.NewDecoder(strings.NewReader(out[i:])).Decode(&doc); derr != nil {
		return iperfResult{}, fmt.Errorf("iperf3 %s: decode JSON: %v (exit: %v)", strings.Join(extra, " "), derr, err)
	}
	r := doc.End.SumReceived
	r.Retransmits = doc.End.SumSent.Retransmits
	switch {
	case doc.Error != "":
		return r, fmt.Errorf("iperf3 %s: %s", strings.Join(extra, " "), doc.Error)
	case err != nil:
		return r, fmt.Errorf("iperf3 %s: %v", strings.Join(extra, " "), err)
	case r.Seconds <= 0 || r.Bytes <= 0:
		return r, fmt.Errorf("iperf3 %s: the receiver counted nothing", strings.Join(extra, " "))
	default:
		return r, nil
	}
}

// pingCount and pingInterval: 50 echoes 10 ms apart, half a second per
// average, on an otherwise idle path.
const (
	pingCount    = "50"
	pingInterval = "0.01"
)

// pingRTT pings addr from h 50 times and returns the average round-trip time
// in microseconds, as ping's summary line reports it.
func pingRTT(ctx context.Context, h *nstest.Host, addr netip.Addr) (float64, error) {
	out, err := run(ctx, h, 15*time.Second, "ping", "-n", "-q", "-c", pingCount, "-i", pingInterval, "-w", "10", addr.String())
	if err != nil {
		return 0, err
	}
	return parsePingAvg(out)
}

// parsePingAvg reads the average from ping's summary,
// "rtt min/avg/max/mdev = 0.031/0.045/0.090/0.010 ms", in microseconds.
func parsePingAvg(out string) (float64, error) {
	_, stats, ok := strings.Cut(out, "min/avg/max/mdev = ")
	if !ok {
		return 0, fmt.Errorf("no rtt summary in ping output: %q", out)
	}
	f := strings.Split(strings.Fields(stats)[0], "/")
	if len(f) < 2 {
		return 0, fmt.Errorf("bad rtt summary in ping output: %q", out)
	}
	ms, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return 0, fmt.Errorf("bad rtt average in ping output: %q", out)
	}
	return ms * 1000, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times. It is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns the user plus system CPU time pid has used.
func cpuSeconds(pid int) (float64, error) {
	f, err := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return f[statUtime] + f[statStime], nil
}

// Indexes into procStat's result: fields 14 to 17 of proc(5).
const (
	statUtime = iota
	statStime
	statCutime // of reaped children
	statCstime
)

// procStat reads utime, stime, cutime and cstime, in seconds, from a
// /proc/PID/stat file. They are counted after the parenthesised command
// name, which may hold spaces.
func procStat(path string) ([4]float64, error) {
	var out [4]float64
	b, err := os.ReadFile(path)
	if err != nil {
		return out, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return out, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 15 {
		return out, fmt.Errorf("%s: unexpected format", path)
	}
	for j := range out {
		v, err := strconv.ParseInt(f[11+j], 10, 64)
		if err != nil {
			return out, fmt.Errorf("%s: field %d: %w", path, 14+j, err)
		}
		out[j] = float64(v) / clockTicks
	}
	return out, nil
}

// A cpuSnapshot is the machine's busy CPU time and this test binary's own,
// which includes its reaped children: every daemon, iperf3 and ping it ran.
type cpuSnapshot struct {
	at        time.Time
	busy, own float64 // seconds
}

// takeCPUSnapshot reads /proc/stat (user, nice, system, irq and softirq of
// all CPUs: a process's system time includes the interrupts that hit while it
// ran, which /proc/stat files separately) and /proc/self/stat.
func takeCPUSnapshot() (cpuSnapshot, error) {
	s := cpuSnapshot{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // "cpu", user, nice, system, idle, iowait, irq, softirq, …
	if len(f) < 8 || f[0] != "cpu" {
		return s, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for _, v := range []string{f[1], f[2], f[3], f[6], f[7]} {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s, fmt.Errorf("/proc/stat: %w", err)
		}
		s.busy += float64(n) / clockTicks
	}
	self, err := procStat("/proc/self/stat")
	for _, v := range self {
		s.own += v
	}
	return s, err
}

// otherCores returns how many cores, on average between s0 and s, were kept
// busy by processes outside this run. It is approximate: /proc/stat counts in
// ticks, process times more finely, and kernel threads that move the run's
// packets count as others. A negative estimate is reported as 0.
func (s cpuSnapshot) otherCores(s0 cpuSnapshot) float64 {
	return max(0, (s.busy-s0.busy)-(s.own-s0.own)) / s.at.Sub(s0.at).Seconds()
}

// totalCPU sums cpuSeconds over procs.
func totalCPU(procs []*nstest.Proc) (float64, error) {
	var sum float64
	for _, p := range procs {
		s, err := cpuSeconds(p.PID())
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p.Name, err)
		}
		sum += s
	}
	return sum, nil
}

// rssBytes returns pid's resident set size, VmRSS in /proc/PID/status.
func rssBytes(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345", "kB"
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("/proc/%d/status: bad VmRSS line %q", pid, line)
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: bad VmRSS line %q", pid, line)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// ifCounters are an interface's packet and byte counters.
type ifCounters struct {
	rxPackets, rxBytes, txPackets, txBytes float64
}

// readCounters reads iface's counters in h from sysfs, which ip netns exec
// mounts afresh for the namespace.
func readCounters(ctx context.Context, h *nstest.Host, iface string) (ifCounters, error) {
	dir := "/sys/class/net/" + iface + "/statistics/"
	out, err := run(ctx, h, 5*time.Second, "cat", dir+"rx_packets", dir+"rx_bytes", dir+"tx_packets", dir+"tx_bytes")
	if err != nil {
		return ifCounters{}, err
	}
	var v [4]float64
	f := strings.Fields(out)
	if len(f) != len(v) {
		return ifCounters{}, fmt.Errorf("counters of %s in %s: got %q", iface, h.Name, out)
	}
	for i := range v {
		if v[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return ifCounters{}, fmt.Errorf("counters of %s in %s: %w", iface, h.Name, err)
		}
	}
	return ifCounters{rxPackets: v[0], rxBytes: v[1], txPackets: v[2], txBytes: v[3]}, nil
}

// avgTx and avgRx are the average size in bytes of what the interface sent
// or received between the snapshots c0 and c. A kernel counts a GSO or GRO
// super-packet once, so an average above the MTU shows offloads at work.
func (c ifCounters) avgTx(c0 ifCounters) float64 {
	return (c.txBytes - c0.txBytes) / max(1, c.txPackets-c0.txPackets)
}

func (c ifCounters) avgRx(c0 ifCounters) float64 {
	return (c.rxBytes - c0.rxBytes) / max(1, c.rxPackets-c0.rxPackets)
}
