package main

// Namespace tests of what operators observe a running node with: the
// Prometheus endpoint, the WireGuard UAPI socket (wg show, wgctrl), and
// overlay-node status. They run real overlay-node processes through the
// testMesh helpers and skip without root.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/uapi"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// obsMetricsPort is where each node serves metrics, on its overlay
// address, as a Prometheus scraping over the mesh would have it.
const obsMetricsPort = 9586

// obsMetricsAddr is n's metrics address.
func obsMetricsAddr(n *meshNode) string {
	return netip.AddrPortFrom(n.addr.Addr(), obsMetricsPort).String()
}

// obsGarbage is how many junk datagrams the tests send.
const obsGarbage = 1000

// obsPair brings up nodes a and b on a two-host LAN, with metrics on, and
// pings across so that they have handshaked. The nodes' sockets are
// removed after the test even if a node was killed.
func obsPair(t *testing.T) (*testMesh, *meshNode, *meshNode) {
	t.Helper()
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	for _, n := range m.nodes {
		obsCleanupSockets(t, n.iface)
		m.start(n, "--metrics", obsMetricsAddr(n))
	}
	a, b := m.nodes[0], m.nodes[1]
	ping(t, a, b.addr.Addr())
	return m, a, b
}

// obsCleanupSockets removes iface's sockets after the test, once its
// processes are gone (cleanups run last-registered first), in case one was
// killed and left them behind. The paths are global, not per namespace.
func obsCleanupSockets(t *testing.T, iface string) {
	t.Cleanup(func() {
		for _, p := range []string{uapi.SocketPath(iface), control.SocketPath(iface)} {
			if c, err := net.Dial("unix", p); err == nil {
				c.Close() // live: not ours to remove
				continue
			}
			os.Remove(p)
		}
	})
}

// obsScrape fetches /metrics from n's metrics address, from inside n's
// namespace: the request does not cross the tunnel.
func obsScrape(t *testing.T, n *meshNode) string {
	t.Helper()
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				err = n.host.InNetns(func() error {
					c, err = new(net.Dialer).DialContext(ctx, network, addr)
					return err
				})
				return c, err
			},
		},
	}
	resp, err := client.Get("http://" + obsMetricsAddr(n) + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", n.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s, %v\n%s", n.name, resp.Status, err, body)
	}
	return string(body)
}

// obsSamples parses the text exposition format into sample values keyed
// by the series as written: name{label="value",...}.
func obsSamples(t *testing.T, text string) map[string]float64 {
	t.Helper()
	m := make(map[string]float64)
	for _, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		m[line[:i]] = v
	}
	return m
}

// obsSample returns the value of series, failing t if it is absent.
func obsSample(t *testing.T, samples map[string]float64, series string) float64 {
	t.Helper()
	v, ok := samples[series]
	if !ok {
		t.Fatalf("no series %s", series)
	}
	return v
}

// obsSendGarbage sends n datagrams whose first byte is no message type
// from inside from's namespace to to, paced so that no socket buffer on
// the way overflows.
func obsSendGarbage(t *testing.T, from *nstest.Host, to netip.AddrPort, n int) {
	t.Helper()
	var conn *net.UDPConn
	err := from.InNetns(func() (err error) {
		conn, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	junk := bytes.Repeat([]byte{0xff}, 32)
	for i := range n {
		if _, err := conn.Write(junk); err != nil {
			t.Fatalf("send garbage %d: %v", i, err)
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// Traffic and garbage show up in /metrics as they happened, and the
// exposition passes promtool.
func TestMetricsEndpoint(t *testing.T) {
	_, a, b := obsPair(t)
	const size = 4 << 20

	beforeA, beforeB := obsSamples(t, obsScrape(t, a)), obsSamples(t, obsScrape(t, b))
	transfer(t, a.host, b.host, b.addr.Addr(), size)
	afterA, afterB := obsSamples(t, obsScrape(t, a)), obsSamples(t, obsScrape(t, b))

	grew := func(name string, before, after map[string]float64, series string, atLeast float64) {
		t.Helper()
		if d := obsSample(t, after, series) - obsSample(t, before, series); d < atLeast {
			t.Errorf("%s: %s grew by %.0f, want at least %.0f", name, series, d, atLeast)
		}
	}
	grew("a", beforeA, afterA, `overlay_peer_transmit_bytes_total{peer="b"}`, size)
	grew("b", beforeB, afterB, `overlay_peer_receive_bytes_total{peer="a"}`, size)
	grew("a", beforeA, afterA, `overlay_peer_transmit_packets_total{peer="b"}`, size/1500)
	grew("b", beforeB, afterB, `overlay_peer_receive_packets_total{peer="a"}`, size/1500)
	// The ACKs flow back.
	grew("a", beforeA, afterA, `overlay_peer_receive_bytes_total{peer="b"}`, 1)
	grew("b", beforeB, afterB, `overlay_peer_transmit_bytes_total{peer="a"}`, 1)
	grew("a", beforeA, afterA, `overlay_batch_size_packets_count{stage="tun_read"}`, 1)
	grew("b", beforeB, afterB, `overlay_batch_size_packets_count{stage="udp_receive"}`, 1)
	grew("b", beforeB, afterB, `overlay_batch_size_packets_count{stage="tun_write"}`, 1)
	grew("a", beforeA, afterA, `overlay_batch_size_packets_count{stage="udp_send"}`, 1)

	for series, want := range map[string]float64{
		`overlay_peer_handshakes_completed_total{peer="b"}`:                       1,
		`overlay_peer_endpoint_info{endpoint="192.168.100.2:51820",peer="b"}`:     1,
		`overlay_build_info{goversion="` + runtime.Version() + `",version="dev"}`: 1,
	} {
		if got := obsSample(t, afterA, series); got < want {
			t.Errorf("a: %s = %v, want at least %v", series, got, want)
		}
	}
	hs := obsSample(t, afterA, `overlay_peer_last_handshake_timestamp_seconds{peer="b"}`)
	if age := time.Since(time.Unix(int64(hs), 0)); age < -time.Minute || age > time.Minute {
		t.Errorf("a: last handshake with b %v ago, want within the last minute", age)
	}
	if !strings.Contains(obsScrape(t, a), `overlay_node_info{config_hash="`) {
		t.Error("a: no overlay_node_info")
	}

	// Garbage from a's address to b's port: counted exactly, by reason.
	const malformed = `overlay_drops_total{reason="malformed"}`
	base := obsSample(t, obsSamples(t, obsScrape(t, b)), malformed)
	obsSendGarbage(t, a.host, netip.AddrPortFrom(b.host.Addr, 51820), obsGarbage)
	var got float64
	waitUntil(t, 10*time.Second, fmt.Sprintf("%d malformed drops on b", obsGarbage), func() bool {
		got = obsSample(t, obsSamples(t, obsScrape(t, b)), malformed) - base
		return got >= obsGarbage
	})
	time.Sleep(200 * time.Millisecond) // anything late would show now
	if got = obsSample(t, obsSamples(t, obsScrape(t, b)), malformed) - base; got != obsGarbage {
		t.Errorf("b: %s grew by %.0f, want exactly %d", malformed, got, obsGarbage)
	}

	for _, n := range []*meshNode{a, b} {
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(obsScrape(t, n))
		out, err := cmd.CombinedOutput()
		if errors, ok := err.(*exec.Error); ok {
			t.Skipf("promtool not available: %v", errors)
		}
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on %s's /metrics: %v\n%s", n.name, err, out)
		}
	}
}

// Stock wg show reads the node over its UAPI socket.
func TestWgShow(t *testing.T) {
	if _, err := exec.LookPath("wg"); err != nil {
		t.Skip("wg (wireguard-tools) not installed; skipping")
	}
	_, a, b := obsPair(t)

	fi, err := os.Stat(uapi.SocketPath(a.iface))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", uapi.SocketPath(a.iface), perm)
	}

	out := string(a.host.MustExec(t, "wg", "show", a.iface))
	for _, want := range []string{
		"interface: " + a.iface,
		"listening port: 51820",
		"peer: " + b.key.PublicKey().String(),
		"endpoint: 192.168.100.2:51820",
		"allowed ips: 10.100.0.2/32",
		"latest handshake: ",
		"transfer: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("wg show %s: no %q in:\n%s", a.iface, want, out)
		}
	}
	if strings.Contains(out, "private key") {
		t.Errorf("wg show %s shows a private key line:\n%s", a.iface, out)
	}

	// The dump is exact: key, psk, endpoint, allowed ips, handshake, rx, tx, keepalive.
	dump := strings.Split(strings.TrimSpace(string(a.host.MustExec(t, "wg", "show", a.iface, "dump"))), "\n")
	if len(dump) != 2 {
		t.Fatalf("wg show dump: got %d lines, want the interface and 1 peer:\n%s", len(dump), strings.Join(dump, "\n"))
	}
	f := strings.Split(dump[1], "\t")
	if len(f) != 8 {
		t.Fatalf("wg show dump peer line: got %d fields, want 8: %q", len(f), dump[1])
	}
	hs, _ := strconv.ParseInt(f[4], 10, 64)
	rx, _ := strconv.ParseUint(f[5], 10, 64)
	tx, _ := strconv.ParseUint(f[6], 10, 64)
	if f[0] != b.key.PublicKey().String() || f[2] != "192.168.100.2:51820" || f[3] != "10.100.0.2/32" {
		t.Errorf("wg show dump peer: got %q", dump[1])
	}
	if age := time.Since(time.Unix(hs, 0)); hs == 0 || age > time.Minute {
		t.Errorf("wg show dump: latest handshake %d, want within the last minute", hs)
	}
	if rx == 0 || tx == 0 {
		t.Errorf("wg show dump: transfer rx %d tx %d, want both nonzero after a ping", rx, tx)
	}

	// The mesh file is the source of truth: wg set is refused.
	_, err = a.host.Exec(t.Context(), "wg", "set", a.iface, "peer", b.key.PublicKey().String(), "remove")
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Errorf("wg set: got %v, want Operation not permitted", err)
	}
	ping(t, a, b.addr.Addr()) // and nothing changed
}

// A wgctrl client, as Prometheus WireGuard exporters use, reads the node.
func TestWgctrlClient(t *testing.T) {
	_, a, b := obsPair(t)
	client, err := wgctrl.New()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	dev, err := client.Device(a.iface)
	if err != nil {
		t.Fatalf("wgctrl Device(%s): %v", a.iface, err)
	}
	if dev.Type != wgtypes.Userspace || dev.ListenPort != 51820 || len(dev.Peers) != 1 {
		t.Fatalf("device: got type %v, port %d, %d peers; want userspace, 51820, 1", dev.Type, dev.ListenPort, len(dev.Peers))
	}
	if dev.PrivateKey != (wgtypes.Key{}) {
		t.Error("device: the private key left the daemon")
	}
	p := dev.Peers[0]
	if wgtypes.Key(b.key.PublicKey()) != p.PublicKey {
		t.Errorf("peer key: got %s, want b's %s", p.PublicKey, b.key.PublicKey())
	}
	if p.Endpoint == nil || p.Endpoint.String() != "192.168.100.2:51820" {
		t.Errorf("peer endpoint: got %v, want 192.168.100.2:51820", p.Endpoint)
	}
	if len(p.AllowedIPs) != 1 || p.AllowedIPs[0].String() != "10.100.0.2/32" {
		t.Errorf("peer allowed IPs: got %v, want [10.100.0.2/32]", p.AllowedIPs)
	}
	if p.LastHandshakeTime.IsZero() || time.Since(p.LastHandshakeTime) > time.Minute {
		t.Errorf("peer last handshake: got %v, want within the last minute", p.LastHandshakeTime)
	}
	if p.ReceiveBytes == 0 || p.TransmitBytes == 0 || p.ProtocolVersion != 1 {
		t.Errorf("peer: rx %d, tx %d, protocol %d; want traffic both ways, protocol 1",
			p.ReceiveBytes, p.TransmitBytes, p.ProtocolVersion)
	}

	err = client.ConfigureDevice(a.iface, wgtypes.Config{ReplacePeers: true})
	if err == nil {
		t.Error("wgctrl ConfigureDevice: got nil, want the change refused")
	}
	if dev, err := client.Device(a.iface); err != nil || len(dev.Peers) != 1 {
		t.Errorf("after a refused configure: %v, %v; want the peer still there", dev, err)
	}
}

// overlay-node status, in both forms, against a running daemon, without
// the mesh file.
func TestStatusCommand(t *testing.T) {
	m, a, b := obsPair(t)
	transfer(t, a.host, b.host, b.addr.Addr(), 1<<20)
	obsSendGarbage(t, b.host, netip.AddrPortFrom(a.host.Addr, 51820), 10)
	waitUntil(t, 10*time.Second, "10 malformed drops on a", func() bool {
		return obsSample(t, obsSamples(t, obsScrape(t, a)), `overlay_drops_total{reason="malformed"}`) >= 10
	})

	out := string(a.host.MustExec(t, m.bin, "status", "--interface", a.iface))
	for _, want := range []string{
		"mesh e2e, node a, interface " + a.iface + ", port 51820",
		"public key: " + a.key.PublicKey().String(),
		"PEER", "ENDPOINT", "HANDSHAKE",
		"b ", "192.168.100.2:51820", "s ago", "MiB",
		"malformed", "10\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status: no %q in:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 80 {
			t.Errorf("status: line wider than 80 columns: %q", line)
		}
	}
	t.Logf("overlay-node status:\n%s", out)

	raw := a.host.MustExec(t, m.bin, "status", "--interface", a.iface, "--json")
	var st control.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, raw)
	}
	if st.Schema != control.SchemaVersion || st.Mesh != "e2e" || st.Node != "a" || st.Interface != a.iface ||
		st.ListenPort != 51820 || st.PublicKey != a.key.PublicKey().String() || len(st.ConfigHash) != 64 {
		t.Errorf("status --json: got %+v", st)
	}
	if len(st.Peers) != 1 {
		t.Fatalf("status --json: got %d peers, want 1", len(st.Peers))
	}
	p := st.Peers[0]
	if p.Name != "b" || p.PublicKey != b.key.PublicKey().String() || p.Endpoint.String() != "192.168.100.2:51820" {
		t.Errorf("status --json peer: got %+v", p)
	}
	if p.LatestHandshake == nil || p.LatestHandshakeAge == nil || *p.LatestHandshakeAge > 60 {
		t.Errorf("status --json peer: handshake %v, age %v; want one within the last minute", p.LatestHandshake, p.LatestHandshakeAge)
	}
	if p.TxBytes < 1<<20 && p.RxBytes < 1<<20 {
		t.Errorf("status --json peer: rx %d, tx %d; want the 1 MiB transfer counted", p.RxBytes, p.TxBytes)
	}
	if st.Drops["malformed"] < 10 || len(st.Drops) == 0 {
		t.Errorf("status --json drops: got %v, want malformed >= 10", st.Drops)
	}
}

// The sockets are the interface's lock across namespaces: a live one stops
// a second daemon at once, a stale one from a killed daemon is replaced,
// and a clean exit removes them.
func TestSocketsLifecycle(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	a := m.nodes[0]
	obsCleanupSockets(t, a.iface)
	m.start(a)
	socks := []string{uapi.SocketPath(a.iface), control.SocketPath(a.iface)}

	// Same interface name in another namespace: no TUN clash there, but the
	// global sockets are taken.
	start := time.Now()
	second := lan.Hosts[1].Start(t, m.bin, "up", "-c", m.path, "-k", a.keyPath, "--interface", a.iface)
	if err := second.Wait(5 * time.Second); err == nstest.ErrRunning || err == nil {
		t.Fatalf("second up on %s in another namespace: got %v, want a quick failure\n%s", a.iface, err, second.Output())
	}
	if out := second.Output(); !containsAll(out, a.iface, "in use", socks[0]) {
		t.Errorf("second up: error does not say the interface is in use:\n%s", out)
	}
	t.Logf("second up failed after %v", time.Since(start).Round(time.Millisecond))
	if out, err := lan.Hosts[1].Exec(t.Context(), "ip", "link", "show", a.iface); err == nil {
		t.Errorf("the failed up left an interface behind:\n%s", out)
	}

	// A metrics address in use fails the start, and undoes it all.
	b := m.nodes[1]
	obsCleanupSockets(t, b.iface)
	var taken net.Listener
	err := b.host.InNetns(func() (err error) {
		taken, err = net.Listen("tcp", "127.0.0.1:9586")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bad := b.host.Start(t, m.bin, "up", "-c", m.path, "-k", b.keyPath, "--interface", b.iface, "--metrics", "127.0.0.1:9586")
	if err := bad.Wait(10 * time.Second); err == nstest.ErrRunning || err == nil {
		t.Fatalf("up with its metrics address in use: got %v, want a failure\n%s", err, bad.Output())
	}
	if out := bad.Output(); !containsAll(out, "metrics", "127.0.0.1:9586", "address already in use") {
		t.Errorf("up with its metrics address in use: unclear error:\n%s", out)
	}
	if out, err := b.host.Exec(t.Context(), "ip", "link", "show", b.iface); err == nil {
		t.Errorf("the failed up left its interface behind:\n%s", out)
	}
	for _, s := range []string{uapi.SocketPath(b.iface), control.SocketPath(b.iface)} {
		if _, err := os.Lstat(s); !os.IsNotExist(err) {
			t.Errorf("the failed up left %s behind: %v", s, err)
		}
	}

	// kill -9 leaves stale sockets; the next up replaces them.
	if err := a.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Wait(5 * time.Second); err == nstest.ErrRunning {
		t.Fatal("node a survived SIGKILL")
	}
	for _, s := range socks {
		if _, err := os.Lstat(s); err != nil {
			t.Fatalf("after SIGKILL, %s: %v; want a stale socket to test with", s, err)
		}
	}
	m.start(a)
	if _, err := exec.Command(m.bin, "status", "--interface", a.iface).Output(); err != nil {
		t.Errorf("status after replacing stale sockets: %v", err)
	}

	// A clean exit removes both.
	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Wait(5 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, a.proc.Output())
	}
	for _, s := range socks {
		if _, err := os.Lstat(s); !os.IsNotExist(err) {
			t.Errorf("after SIGTERM, %s: got %v, want it removed", s, err)
		}
	}
}
