package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// inNetns runs fn in h's namespace; sockets fn opens stay there.
func inNetns(t *testing.T, h *nstest.Host, fn func() error) {
	t.Helper()
	if err := h.InNetns(fn); err != nil {
		t.Fatal(err)
	}
}

// status reads a node's counters over its control socket.
func status(t *testing.T, n *meshNode) *control.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, st, err := control.FetchStatus(ctx, control.SocketPath(n.iface))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func peerStatus(t *testing.T, st *control.Status, name string) control.Peer {
	t.Helper()
	for _, p := range st.Peers {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no peer %q in status", name)
	return control.Peer{}
}

// waitDrops waits until node n has counted want drops of reason.
func waitDrops(t *testing.T, n *meshNode, reason string, want uint64) {
	t.Helper()
	var got uint64
	if !poll(5*time.Second, func() bool { got = status(t, n).Drops[reason]; return got >= want }) || got != want {
		t.Fatalf("node %s: got %d %s drops, want %d", n.name, got, reason, want)
	}
}

// captureTransport opens a packet socket on h's LAN interface and returns
// the first WireGuard transport datagram (with data) sent to port 51820
// that arrives within the timeout.
func captureTransport(t *testing.T, h *nstest.Host, start func()) []byte {
	t.Helper()
	var fd int
	inNetns(t, h, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM, int(htons(unix.ETH_P_IP)))
		return err
	})
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	start()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil || n < 28 || buf[9] != unix.IPPROTO_UDP {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		udp := buf[ihl:n]
		if binary.BigEndian.Uint16(udp[2:4]) != 51820 {
			continue
		}
		payload := udp[8:]
		if len(payload) > 32 && payload[0] == 4 {
			return append([]byte(nil), payload...)
		}
	}
	t.Fatal("captured no transport datagram")
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendUDP sends each datagram from a fresh socket in from's namespace,
// optionally bound to a local address.
func sendUDP(t *testing.T, from *nstest.Host, local netip.Addr, to netip.AddrPort, datagrams [][]byte) {
	t.Helper()
	var conn *net.UDPConn
	inNetns(t, from, func() (err error) {
		var laddr *net.UDPAddr
		if local.IsValid() {
			laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
		}
		conn, err = net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(to))
		return err
	})
	defer conn.Close()
	for _, d := range datagrams {
		if _, err := conn.Write(d); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Microsecond) // don't overrun the receiver's socket buffer
	}
}

// The datapath enforces the security invariants on real processes: a
// spoofed inner source, a replayed transport packet and garbage at the
// port are each dropped and counted, and the tunnel keeps working.
func TestDatapathSecurity(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	m.startAll()
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]
	ping(t, b, a.addr.Addr())
	port := netip.AddrPortFrom(a.host.Addr, 51820)

	t.Run("spoofed inner source", func(t *testing.T) {
		// b claims c's overlay address as its source.
		b.host.MustExec(t, "ip", "addr", "add", c.addr.Addr().String()+"/32", "dev", "lo")
		before := status(t, a).Drops["source_not_allowed"]
		const n = 10
		var probes [][]byte
		for i := 0; i < n; i++ {
			probes = append(probes, []byte(fmt.Sprintf("spoof %d", i)))
		}
		sendUDP(t, b.host, c.addr.Addr(), netip.AddrPortFrom(a.addr.Addr(), 9), probes)
		waitDrops(t, a, "source_not_allowed", before+n)
		if got := peerStatus(t, status(t, a), "b").Drops["source_not_allowed"]; got < n {
			t.Errorf("got %d drops charged to peer b, want at least %d", got, n)
		}
	})

	t.Run("replayed transport packet", func(t *testing.T) {
		// The packet socket queues what arrives while the ping runs; the
		// originals have all been delivered by the time we replay one.
		pkt := captureTransport(t, a.host, func() { ping(t, b, a.addr.Addr()) })
		st := status(t, a)
		before, endpoint := st.Drops["replay"], peerStatus(t, st, "b").Endpoint
		sendUDP(t, b.host, netip.Addr{}, port, [][]byte{pkt})
		waitDrops(t, a, "replay", before+1)
		if got := peerStatus(t, status(t, a), "b").Endpoint; got != endpoint {
			t.Errorf("a replayed packet moved b's endpoint from %v to %v", endpoint, got)
		}
	})

	t.Run("garbage at the port", func(t *testing.T) {
		before := status(t, a).Drops["malformed"]
		rng := rand.New(rand.NewPCG(7, 7))
		const n = 1000
		var garbage [][]byte
		for i := 0; i < n; i++ {
			g := make([]byte, 1+rng.IntN(300))
			for j := range g {
				g[j] = byte(rng.Uint32())
			}
			g[0] = byte(5 + rng.IntN(250)) // never a message type
			garbage = append(garbage, g)
		}
		sendUDP(t, b.host, netip.Addr{}, port, garbage)
		waitDrops(t, a, "malformed", before+n)
		ping(t, b, a.addr.Addr())
		ping(t, a, c.addr.Addr())
	})
}
