package tunnel

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/tunnel/tunneltest"
)

// Interop with wireguard-go's own engine, in process, over loopback UDP:
// the second oracle after the known-answer vector.

type wgPeer struct {
	dev  *device.Device
	tun  *tuntest.ChannelTUN
	key  crypto.PrivateKey
	port uint16
	addr netip.Addr
}

func startWireGuardGo(t *testing.T) *wgPeer {
	t.Helper()
	w := &wgPeer{tun: tuntest.NewChannelTUN(), key: mustKey(t), addr: netip.MustParseAddr("10.0.0.2")}
	w.dev = device.NewDevice(w.tun.TUN(), conn.NewStdNetBind(), device.NewLogger(device.LogLevelError, "wireguard-go: "))
	t.Cleanup(w.dev.Close)
	if err := w.dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=0\n", hex.EncodeToString(w.key[:]))); err != nil {
		t.Fatal(err)
	}
	if err := w.dev.Up(); err != nil {
		t.Fatal(err)
	}
	get, err := w.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(get, "\n") {
		if v, ok := strings.CutPrefix(line, "listen_port="); ok {
			p, _ := strconv.Atoi(v)
			w.port = uint16(p)
		}
	}
	if w.port == 0 {
		t.Fatalf("wireguard-go reported no listen port in %q", get)
	}
	return w
}

// startOurs runs our engine on a real loopback UDP socket with w as its
// only peer, and tells w about it.
func startOurs(t *testing.T, w *wgPeer, clock Clock) (*testNode, *Device) {
	t.Helper()
	n := &testNode{tun: tunneltest.NewTUN(1420, encap.BatchSize), key: mustKey(t), addr: netip.MustParseAddr("10.0.0.1")}
	cfg := Config{PrivateKey: n.key, MTU: 1420, Peers: []PeerConfig{{
		Name:       "wggo",
		PublicKey:  w.key.PublicKey(),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(w.addr, 32)},
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), w.port),
	}}}
	dev, err := New(n.tun, encap.NewBind(), cfg, Options{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	n.dev = dev
	pub := n.key.PublicKey()
	if err := w.dev.IpcSet(fmt.Sprintf("public_key=%s\nendpoint=127.0.0.1:%d\nallowed_ip=10.0.0.1/32\n",
		hex.EncodeToString(pub[:]), dev.Port())); err != nil {
		t.Fatal(err)
	}
	return n, dev
}

func recvWG(t *testing.T, w *wgPeer, want []byte) {
	t.Helper()
	select {
	case got := <-w.tun.Inbound:
		if string(got) != string(want) {
			t.Fatalf("wireguard-go got %x, want %x", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wireguard-go received nothing within 10s")
	}
}

func TestInteropWeInitiate(t *testing.T) {
	w := startWireGuardGo(t)
	n, _ := startOurs(t, w, nil)
	for i := 0; i < 50; i++ {
		p := ipv4Packet(n.addr, w.addr, []byte(fmt.Sprintf("to wireguard-go %d", i)))
		n.tun.Inject(p)
		recvWG(t, w, p)
		q := ipv4Packet(w.addr, n.addr, []byte(fmt.Sprintf("from wireguard-go %d", i)))
		w.tun.Outbound <- q
		expectPacket(t, n, q)
	}
}

func TestInteropTheyInitiate(t *testing.T) {
	w := startWireGuardGo(t)
	n, dev := startOurs(t, w, nil)
	q := ipv4Packet(w.addr, n.addr, []byte("wireguard-go speaks first"))
	w.tun.Outbound <- q
	expectPacket(t, n, q)
	p := ipv4Packet(n.addr, w.addr, []byte("and we answer"))
	n.tun.Inject(p)
	recvWG(t, w, p)
	if got := dev.Snapshot().Peers[0].HandshakesCompleted; got != 1 {
		t.Errorf("got %d handshakes, want 1 (as responder)", got)
	}
}

// Under load, our responder answers an initiation that lacks MAC2 with a
// cookie reply; wireguard-go's retry carries MAC2 and succeeds.
func TestInteropCookieUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("waits one RekeyTimeout for wireguard-go's retry")
	}
	w := startWireGuardGo(t)
	n, dev := startOurs(t, w, nil)
	dev.setUnderLoad(true)
	q := ipv4Packet(w.addr, n.addr, []byte("through the cookie"))
	w.tun.Outbound <- q
	select {
	case got := <-n.tun.Outbound:
		if string(got.Packet) != string(q) {
			t.Fatalf("got %x, want %x", got.Packet, q)
		}
	case <-time.After(2 * RekeyTimeout):
		t.Fatalf("no packet after the cookie round trip; drops %v", dev.Snapshot().Drops)
	}
	if got := dev.Snapshot().CookieRepliesSent; got < 1 {
		t.Errorf("got %d cookie replies, want at least 1", got)
	}
}
