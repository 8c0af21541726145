package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// extHeaders are the IPv6 extension headers the kernel inserts for a
// socket option, each with the option that reports it to a receiver.
var extHeaders = []struct {
	name          string
	set, recv     int // IPPROTO_IPV6 socket options: on the sender, on the receiver
	reportedAs    int // the control message type the receiver gets
	headerOptions []byte
}{
	// One PadN option of 4 bytes: an 8-byte header that means nothing, so
	// that only the firewall's parse can be tripped by it. The kernel
	// fills in the next-header byte.
	{"hop-by-hop", unix.IPV6_HOPOPTS, unix.IPV6_RECVHOPOPTS, unix.IPV6_HOPOPTS, []byte{0, 0, 1, 4, 0, 0, 0, 0}},
	{"destination options", unix.IPV6_DSTOPTS, unix.IPV6_RECVDSTOPTS, unix.IPV6_DSTOPTS, []byte{0, 0, 1, 4, 0, 0, 0, 0}},
}

// extDatagram is a datagram received with the extension headers the kernel
// reported for it.
type extDatagram struct {
	payload string
	headers []int // control message types at IPPROTO_IPV6
}

// listenExtUDP6 listens on UDP port in h's namespace, asking the kernel to
// report every extension header of extHeaders, and delivers what arrives.
func listenExtUDP6(t *testing.T, h *nstest.Host, port int) <-chan extDatagram {
	t.Helper()
	var c *net.UDPConn
	inNetns(t, h, func() error {
		var err error
		c, err = net.ListenUDP("udp6", &net.UDPAddr{Port: port})
		if err != nil {
			return err
		}
		return setsockopts(c, func(fd int) error {
			for _, e := range extHeaders {
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, e.recv, 1); err != nil {
					return fmt.Errorf("receive %s: %w", e.name, err)
				}
			}
			return nil
		})
	})
	t.Cleanup(func() { c.Close() })
	got := make(chan extDatagram, 16)
	go func() {
		buf, oob := make([]byte, 1500), make([]byte, 512)
		for {
			n, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			d := extDatagram{payload: string(buf[:n])}
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if m.Header.Level == unix.IPPROTO_IPV6 {
					d.headers = append(d.headers, int(m.Header.Type))
				}
			}
			got <- d
		}
	}()
	return got
}

// setsockopts runs fn on c's socket.
func setsockopts(c syscall.Conn, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// sendWithExtHeader sends payload from h to addr:port over UDP with the
// kernel inserting extension header opt, and returns the error the
// connected socket reports within wait afterwards (nil if none): a local
// rejection shows there.
func sendWithExtHeader(t *testing.T, h *nstest.Host, addr netip.Addr, port, opt int, header []byte, payload string, wait time.Duration) error {
	t.Helper()
	var c *net.UDPConn
	inNetns(t, h, func() error {
		var err error
		c, err = net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, uint16(port))))
		if err != nil {
			return err
		}
		return setsockopts(c, func(fd int) error {
			return unix.SetsockoptString(fd, unix.IPPROTO_IPV6, opt, string(header))
		})
	})
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatalf("send %q: %v", payload, err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1500))
	if errors.Is(err, syscall.EACCES) {
		return err
	}
	return nil
}

// TestSegmentationIPv6ExtensionHeaders: IPv6 datagrams carrying a hop-by-hop
// or destination-options header are classified by the UDP datagram behind
// it, at both ends. With only udp/9999 allowed, a datagram to 9999 arrives
// (with its header, as the receiver's kernel reports) and one to 7777 does
// not: the sending node rejects it at once, and the receiving node, when
// the sender is a stock WireGuard peer that enforces nothing, drops it and
// counts it as a policy drop.
func TestSegmentationIPv6ExtensionHeaders(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	web, db, stock := m.nodes[0], m.nodes[1], m.nodes[2]
	for i, n := range m.nodes {
		n.addr6 = netip.MustParsePrefix(fmt.Sprintf("fd00:100::%d/64", i+1))
	}
	web.groups, db.groups, stock.groups = []string{"web"}, []string{"db"}, []string{"web"}
	m.tail = `
[[allow]]
name = "web-to-db-udp"
from = ["group:web"]
to = ["group:db"]
ports = ["9999/udp"]

[[allow]]
name = "ping"
from = ["*"]
to = ["*"]
ports = ["icmp"]
`
	m.write(m.nodes)
	m.start(web)
	m.start(db)
	startStockPeer(t, m, stock)
	ping(t, web, db.addr.Addr())
	ping(t, stock, db.addr.Addr())

	allowed, denied := listenExtUDP6(t, db.host, 9999), listenExtUDP6(t, db.host, 7777)
	dbAddr := db.addr6.Addr()
	for _, e := range extHeaders {
		for _, from := range []*meshNode{web, stock} {
			msg := fmt.Sprintf("%s from %s", e.name, from.name)
			if err := sendWithExtHeader(t, from.host, dbAddr, 9999, e.set, e.headerOptions, msg, 0); err != nil {
				t.Errorf("%s -> db:9999/udp with %s: %v", from.name, e.name, err)
			}
			select {
			case d := <-allowed:
				if d.payload != msg || len(d.headers) != 1 || d.headers[0] != e.reportedAs {
					t.Errorf("db:9999 got %q with IPv6 control messages %v, want %q with type %d (%s)", d.payload, d.headers, msg, e.reportedAs, e.name)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s -> db:9999/udp with %s: nothing arrived", from.name, e.name)
			}
		}

		// From web: its own node rejects the datagram before it leaves
		// (ICMPv6 administratively prohibited: EACCES on the socket).
		_, out0 := fwDenied(t, web)
		err := sendWithExtHeader(t, web.host, dbAddr, 7777, e.set, e.headerOptions, "denied from a", rejectWithin)
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("web -> db:7777/udp with %s: %v, want permission denied (rejected by web)", e.name, err)
		}
		if _, out1 := fwDenied(t, web); out1-out0 != 1 {
			t.Errorf("web: denied out grew by %d, want 1", out1-out0)
		}

		// From the stock peer: db drops it, as a policy drop.
		drops0 := status(t, db).Drops["policy"]
		sendWithExtHeader(t, stock.host, dbAddr, 7777, e.set, e.headerOptions, "denied from c", 0)
		var drops uint64
		poll(5*time.Second, func() bool { drops = status(t, db).Drops["policy"] - drops0; return drops >= 1 })
		time.Sleep(200 * time.Millisecond)
		if drops = status(t, db).Drops["policy"] - drops0; drops != 1 {
			t.Errorf("stock -> db:7777/udp with %s: db counted %d policy drops, want 1", e.name, drops)
		}
	}
	select {
	case d := <-denied:
		t.Errorf("db:7777 received %q, want nothing (port not allowed)", d.payload)
	default:
	}
}
