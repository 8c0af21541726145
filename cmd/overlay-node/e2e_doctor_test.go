package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/doctor"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// localChecks are doctor's checks of the node itself, before the peers.
var localChecks = []string{"daemon", "mesh file", "interface", "routes", "route shadowing", "forwarding", "firewall", "udp port"}

// runDoctor runs `overlay-node doctor --json` on n and decodes its report.
func runDoctor(t *testing.T, m *testMesh, n *meshNode) *doctor.Report {
	t.Helper()
	out, err := n.host.Exec(t.Context(), m.bin, "doctor", "--json", "--interface", n.iface, "--wait", "2s")
	var r doctor.Report
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("doctor: %v; output:\n%s", err, out)
	}
	if r.Failed() != (err != nil) {
		t.Errorf("doctor: report failed %v, but exit error %v", r.Failed(), err)
	}
	return &r
}

// expectDoctor checks that exactly the checks named in fail fail, each
// saying every word of its want list, and that every other local check,
// and with peersOK every peer check, is ok.
func expectDoctor(t *testing.T, r *doctor.Report, peersOK bool, fail map[string][]string) {
	t.Helper()
	text := func() string { var b strings.Builder; r.WriteText(&b); return b.String() }
	for name, words := range fail {
		c := r.Find(name)
		switch {
		case c == nil:
			t.Errorf("no %q check in:\n%s", name, text())
		case c.Level != doctor.Fail:
			t.Errorf("%s: got %s, want fail:\n%s", name, c.Level, text())
		case !containsAll(c.Saw+" "+c.Fix, words...):
			t.Errorf("%s: got %q (fix %q), want it to say %q", name, c.Saw, c.Fix, words)
		}
	}
	for _, c := range r.Checks {
		local := false
		for _, l := range localChecks {
			local = local || c.Name == l
		}
		if _, named := fail[c.Name]; named || !local && !peersOK {
			continue
		}
		if c.Level != doctor.OK {
			t.Errorf("%s: got %s (%s), want ok:\n%s", c.Name, c.Level, c.Saw, text())
		}
	}
}

// Each failure mode doctor knows, made in a namespace on a two-node mesh:
// the right check fails and names the cause, and the others stay ok.
func TestDoctorFailureModes(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	subA, subB := netip.MustParsePrefix("172.20.1.0/24"), netip.MustParsePrefix("172.20.2.0/24")
	m := newTestMesh(t, lan.Hosts, map[int][]netip.Prefix{0: {subA}, 1: {subB}})
	a, b := m.nodes[0], m.nodes[1]
	for _, n := range m.nodes {
		n.host.MustExec(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	m.startAll()
	ping(t, a, b.addr.Addr())

	r := runDoctor(t, m, a)
	logReport(t, r)
	expectDoctor(t, r, true, nil)
	for _, name := range append(localChecks, "peer b: endpoint", "peer b: underlay mtu", "peer b: handshake", "peer b: ping") {
		if r.Find(name) == nil {
			t.Errorf("healthy node: no %q check", name)
		}
	}
	out := a.host.MustExec(t, m.bin, "ping", "--interface", a.iface, "-n", "2", "b")
	if !containsAll(string(out), "pong from b (10.100.0.2) via 192.168.100.2:51820 in ", "session from a handshake") {
		t.Errorf("ping b: got %q", out)
	}

	for _, tc := range []struct {
		name        string
		break_, fix [][]string // commands run in a's namespace
		peersOK     bool
		fail        map[string][]string
	}{{
		name:    "deleted route",
		break_:  [][]string{{"ip", "route", "del", subB.String(), "dev", a.iface}},
		fix:     [][]string{{"ip", "route", "add", subB.String(), "dev", a.iface}},
		peersOK: true,
		fail:    map[string][]string{"routes": {subB.String(), "ip route add"}},
	}, {
		name: "shadowing route",
		break_: [][]string{{"ip", "link", "add", "docker9", "type", "bridge"},
			{"ip", "addr", "add", "172.20.2.129/25", "dev", "docker9"}, {"ip", "link", "set", "docker9", "up"}},
		fix:     [][]string{{"ip", "link", "del", "docker9"}},
		peersOK: true,
		fail:    map[string][]string{"route shadowing": {"172.20.2.128/25", "docker9", subB.String()}},
	}, {
		name:    "forwarding off",
		break_:  [][]string{{"sysctl", "-qw", "net.ipv4.ip_forward=0"}},
		fix:     [][]string{{"sysctl", "-qw", "net.ipv4.ip_forward=1"}},
		peersOK: true,
		fail:    map[string][]string{"forwarding": {"net.ipv4.ip_forward", "sysctl -w"}},
	}, {
		name:    "MTU mismatch",
		break_:  [][]string{{"ip", "link", "set", a.iface, "mtu", "1380"}},
		fix:     [][]string{{"ip", "link", "set", a.iface, "mtu", "1420"}},
		peersOK: true,
		fail:    map[string][]string{"interface": {"MTU is 1380", "1420"}},
	}, {
		// The underlay cannot carry a full-size sealed packet.
		name:    "underlay MTU too small",
		break_:  [][]string{{"ip", "link", "set", "eth0", "mtu", "1400"}},
		fix:     [][]string{{"ip", "link", "set", "eth0", "mtu", "1500"}},
		peersOK: true,
		fail:    map[string][]string{"peer b: underlay mtu": {"eth0", "MTU 1400", "needs 1480", "mtu = 1340"}},
	}, {
		name: "firewall drop on the port",
		break_: [][]string{{"nft", "add", "table", "inet", "doctortest"},
			{"nft", "add", "chain", "inet", "doctortest", "in", "{ type filter hook input priority 0; policy accept; }"},
			{"nft", "add", "rule", "inet", "doctortest", "in", "udp", "dport", "51820", "drop"}},
		fix: [][]string{{"nft", "delete", "table", "inet", "doctortest"}},
		// b's answers cannot come in: the peer checks fail too, and say
		// to fix the firewall first.
		fail: map[string][]string{"firewall": {"UDP to the mesh port 51820", "udp dport 51820 drop"},
			"peer b: handshake": {"the failed checks above are the likelier cause"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range tc.break_ {
				a.host.MustExec(t, c[0], c[1:]...)
			}
			r := runDoctor(t, m, a)
			for _, c := range tc.fix {
				a.host.MustExec(t, c[0], c[1:]...)
			}
			expectDoctor(t, r, tc.peersOK, tc.fail)
			logReport(t, r)
		})
	}

	t.Run("wrong key in the mesh for a peer", func(t *testing.T) {
		good := b.key
		wrong, err := crypto.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		b.key = wrong
		m.write(m.nodes)
		b.key = good
		reloadNode(t, a)
		defer func() {
			m.write(m.nodes)
			reloadNode(t, a)
		}()
		r := runDoctor(t, m, a)
		logReport(t, r)
		expectDoctor(t, r, false, map[string][]string{
			"peer b: handshake": {"unanswered", "key mismatch is likelier", "public_key"},
			"peer b: ping":      {"no reply"},
		})
	})

	t.Run("peer down", func(t *testing.T) {
		if err := b.proc.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := b.proc.Wait(5 * time.Second); err != nil {
			t.Fatalf("b: %v", err)
		}
		r := runDoctor(t, m, a)
		logReport(t, r)
		expectDoctor(t, r, false, map[string][]string{
			"peer b: handshake": {"port unreachable", "daemon is down", "start overlay-node on b"},
			"peer b: ping":      {"no reply"},
		})
		out, err := a.host.Exec(t.Context(), m.bin, "ping", "--interface", a.iface, "-n", "1", "--wait", "1s", "b")
		if err == nil || !containsAll(string(out), "no reply from b", "1 of 1 echo requests to b unanswered") {
			t.Errorf("ping a peer that is down: got %v, %q; want exit 1 and no reply", err, out)
		}
	})
}

// reloadNode sends n SIGHUP and waits for the reload to be logged.
func reloadNode(t *testing.T, n *meshNode) {
	t.Helper()
	before := strings.Count(n.proc.Output(), "mesh file reloaded")
	if err := n.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "reload of "+n.name, func() bool {
		return strings.Count(n.proc.Output(), "mesh file reloaded") > before
	})
}

// doctor without a daemon fails its first check and says how to start one.
func TestDoctorNoDaemon(t *testing.T) {
	var out, errb strings.Builder
	code := run([]string{"doctor", "--interface", "nodaemon0"}, nil, &out, &errb)
	if code != exitError || !containsAll(out.String(), "fail", "daemon", "overlay-node up") {
		t.Errorf("got exit %d, output:\n%s%s", code, out.String(), errb.String())
	}
}

// logReport logs r as doctor prints it, with -v.
func logReport(t *testing.T, r *doctor.Report) {
	if testing.Verbose() {
		var b strings.Builder
		r.WriteText(&b)
		t.Log("\n" + b.String())
	}
}
