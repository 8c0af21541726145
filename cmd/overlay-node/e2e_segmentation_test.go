package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The segmentation namespace tests: real overlay-node processes, a stock
// wireguard-go peer and a site LAN, with the kernel's own TCP, UDP and
// ICMP on both ends.

// segRules are the rules of the segmentation mesh.
const segRules = webToDB + `
[[allow]]
name = "admin-any"
from = ["group:admin"]
to = ["*"]

[[allow]]
name = "any-to-web"
from = ["*"]
to = ["group:web"]
ports = ["80/tcp"]

[[allow]]
name = "icmp-admin"
from = ["group:admin"]
to = ["*"]
ports = ["icmp"]
`

const webToDB = `
[[allow]]
name = "web-to-db"
from = ["group:web"]
to = ["group:db"]
ports = ["5432/tcp"]
`

// rejectWithin is how long a rejected connect or datagram may take to fail:
// an answer from the local node, not a timeout.
const rejectWithin = time.Second

// serveTCPEcho listens on port in h's namespace and echoes every connection.
func serveTCPEcho(t *testing.T, h *nstest.Host, port int) {
	t.Helper()
	var ln net.Listener
	inNetns(t, h, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

// serveUDPEcho listens on port in h's namespace and echoes every datagram.
func serveUDPEcho(t *testing.T, h *nstest.Host, port int) {
	t.Helper()
	var pc net.PacketConn
	inNetns(t, h, func() (err error) {
		pc, err = net.ListenPacket("udp4", fmt.Sprintf(":%d", port))
		return err
	})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

// dialTCP connects from h's namespace to addr:port within timeout.
func dialTCP(h *nstest.Host, addr netip.Addr, port int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := h.InNetns(func() (err error) {
		c, err = net.DialTimeout("tcp4", netip.AddrPortFrom(addr, uint16(port)).String(), timeout)
		return err
	})
	return c, err
}

// echoTCP sends msg on c and reads it back within timeout.
func echoTCP(c net.Conn, msg []byte, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("echo differs")
	}
	return nil
}

// udpRoundTrip sends a datagram of size bytes from h to addr:port on a
// connected socket and waits for its echo; a rejection shows as an error
// from the read (EHOSTUNREACH: administratively prohibited).
func udpRoundTrip(h *nstest.Host, addr netip.Addr, port, size int, timeout time.Duration) error {
	var c net.Conn
	if err := h.InNetns(func() (err error) {
		c, err = net.Dial("udp4", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	msg := bytes.Repeat([]byte{'u'}, size)
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, size+1)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("echo of %d bytes, want %d", n, size)
	}
	return nil
}

// pingOnce sends one echo request from h to addr and returns the ICMP type
// and code of the first answer about it within timeout.
func pingOnce(t *testing.T, h *nstest.Host, addr netip.Addr, timeout time.Duration) (typ, code int, err error) {
	t.Helper()
	var conn *icmp.PacketConn
	inNetns(t, h, func() (err error) {
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: 0x5e9, Seq: 1, Data: []byte("segmentation")}}
	b, _ := msg.Marshal(nil)
	if _, err := conn.WriteTo(b, &net.IPAddr{IP: addr.AsSlice()}); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return 0, 0, err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil || m.Type == ipv4.ICMPTypeEcho {
			continue
		}
		return int(m.Type.(ipv4.ICMPType)), m.Code, nil
	}
}

// sendRaw sends an IPv4 packet, header included, from h's namespace.
func sendRaw(t *testing.T, h *nstest.Host, pkt []byte) {
	t.Helper()
	inNetns(t, h, func() error {
		pc, err := net.ListenPacket("ip4:udp", "0.0.0.0")
		if err != nil {
			return err
		}
		defer pc.Close()
		rc, err := ipv4.NewRawConn(pc)
		if err != nil {
			return err
		}
		hdr, err := ipv4.ParseHeader(pkt)
		if err != nil {
			return err
		}
		return rc.WriteTo(hdr, pkt[hdr.Len:], nil)
	})
}

// rawPacket builds an IPv4 packet of protocol proto from src to dst with
// the transport header th, its checksum at csumAt filled in.
func rawPacket(src, dst netip.Addr, proto byte, th []byte, csumAt int) []byte {
	p := make([]byte, 20+len(th))
	p[0], p[8], p[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	copy(p[20:], th)
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(p[12:20])
	sum += uint32(proto) + uint32(len(th))
	add(p[20:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[20+csumAt:], ^uint16(sum))
	return p
}

// segMesh is the mesh of TestSegmentation.
type segMesh struct {
	*testMesh
	web, db, admin, none, stock *meshNode
	site                        *nstest.Site
}

func newSegMesh(t *testing.T) *segMesh {
	lan := nstest.NewLAN(t, 5)
	site := lan.AddSite(lan.Hosts[1])
	m := newTestMesh(t, lan.Hosts, map[int][]netip.Prefix{1: {site.Subnet}})
	s := &segMesh{testMesh: m, web: m.nodes[0], db: m.nodes[1], admin: m.nodes[2], none: m.nodes[3], stock: m.nodes[4], site: site}
	s.web.groups, s.db.groups, s.admin.groups, s.stock.groups = []string{"web"}, []string{"db"}, []string{"admin"}, []string{"web"}
	m.tail = segRules
	m.write(m.nodes)
	for _, n := range m.nodes[:4] {
		obsCleanupSockets(t, n.iface)
		m.start(n, "--metrics", obsMetricsAddr(n))
	}
	startStockPeer(t, m, s.stock)
	// Sessions everywhere first, by what the rules allow: admin pings all.
	for _, n := range []*meshNode{s.web, s.db, s.none, s.stock} {
		ping(t, s.admin, n.addr.Addr())
	}
	return s
}

// fwDenied reads the packets n's firewall denied, each way.
func fwDenied(t *testing.T, n *meshNode) (in, out uint64) {
	t.Helper()
	f := status(t, n).Firewall
	return f.DeniedIn, f.DeniedOut
}

func TestSegmentation(t *testing.T) {
	s := newSegMesh(t)
	web, db, admin, none, stock := s.web, s.db, s.admin, s.none, s.stock
	for _, n := range []*meshNode{web, db, admin, none} {
		serveTCPEcho(t, n.host, 5432)
		serveTCPEcho(t, n.host, 80)
		serveTCPEcho(t, n.host, 22)
		serveUDPEcho(t, n.host, 9999)
	}
	serveTCPEcho(t, s.site.Host, 5432)
	serveTCPEcho(t, s.site.Host, 22)
	serveUDPEcho(t, s.site.Host, 9999)
	siteAddr := s.site.Addr

	t.Run("allowed pairs connect", func(t *testing.T) {
		for _, tc := range []struct {
			from *nstest.Host
			to   netip.Addr
			port int
		}{
			{web.host, db.addr.Addr(), 5432},
			{web.host, siteAddr, 5432},
			{stock.host, db.addr.Addr(), 5432},
			{admin.host, db.addr.Addr(), 22},
			{admin.host, siteAddr, 22},
			{none.host, web.addr.Addr(), 80},
			{db.host, web.addr.Addr(), 80},
			{stock.host, web.addr.Addr(), 80},
		} {
			c, err := dialTCP(tc.from, tc.to, tc.port, 5*time.Second)
			if err != nil {
				t.Errorf("%s -> %s:%d: %v, want a connection", tc.from.Name, tc.to, tc.port, err)
				continue
			}
			if err := echoTCP(c, []byte("both ways"), 5*time.Second); err != nil {
				t.Errorf("%s -> %s:%d: echo: %v", tc.from.Name, tc.to, tc.port, err)
			}
			c.Close()
		}
		for _, to := range []netip.Addr{db.addr.Addr(), web.addr.Addr(), none.addr.Addr(), siteAddr} {
			if err := udpRoundTrip(admin.host, to, 9999, 100, 5*time.Second); err != nil {
				t.Errorf("admin -> %s udp: %v", to, err)
			}
			if err := nstest.Ping(t, admin.host, to.String()); err != nil {
				t.Errorf("admin ping %s: %v", to, err)
			}
		}
	})

	t.Run("denied pairs fail at once", func(t *testing.T) {
		for _, tc := range []struct {
			from *nstest.Host
			to   netip.Addr
			port int
		}{
			{web.host, db.addr.Addr(), 22},
			{web.host, admin.addr.Addr(), 5432},
			{db.host, web.addr.Addr(), 5432},
			{none.host, db.addr.Addr(), 5432},
			{none.host, siteAddr, 5432},
		} {
			c, err := dialTCP(tc.from, tc.to, tc.port, rejectWithin)
			if err == nil {
				c.Close()
				t.Errorf("%s -> %s:%d connected, want it refused", tc.from.Name, tc.to, tc.port)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%s -> %s:%d: %v, want connection refused (a RST from the local node)", tc.from.Name, tc.to, tc.port, err)
			}
		}
		if err := udpRoundTrip(none.host, db.addr.Addr(), 9999, 100, rejectWithin); !errors.Is(err, syscall.EHOSTUNREACH) {
			t.Errorf("none -> db udp: %v, want host unreachable (administratively prohibited)", err)
		}
		for _, from := range []*meshNode{web, none, db} {
			typ, code, err := pingOnce(t, from.host, admin.addr.Addr(), rejectWithin)
			if err != nil || typ != 3 || code != 13 {
				t.Errorf("%s ping admin: got type %d code %d (%v), want 3/13 administratively prohibited", from.name, typ, code, err)
			}
		}
	})

	t.Run("stock peer policed by the receiver alone", func(t *testing.T) {
		in0, _ := fwDenied(t, db)
		drops0 := status(t, db).Drops["policy"]
		if c, err := dialTCP(stock.host, db.addr.Addr(), 22, rejectWithin); err == nil {
			c.Close()
			t.Fatal("stock -> db:22 connected, want it dropped by db")
		} else if !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
			t.Errorf("stock -> db:22: %v, want a timeout (inbound denials are not answered)", err)
		}
		in1, _ := fwDenied(t, db)
		if in1 <= in0 || status(t, db).Drops["policy"]-drops0 != in1-in0 {
			t.Errorf("db: denied in %d -> %d, policy drops grew by %d; want them to grow alike", in0, in1, status(t, db).Drops["policy"]-drops0)
		}
	})

	t.Run("replies pass, the other direction does not open", func(t *testing.T) {
		c, err := dialTCP(web.host, db.addr.Addr(), 5432, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			if err := echoTCP(c, bytes.Repeat([]byte{byte(i)}, 64<<10), 5*time.Second); err != nil {
				t.Fatalf("web -> db round %d: %v", i, err)
			}
			if d, err := dialTCP(db.host, web.addr.Addr(), 5432, rejectWithin); err == nil {
				d.Close()
				t.Fatal("db -> web:5432 connected while web's connection to db is open")
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("db -> web:5432: %v, want refused", err)
			}
		}
	})

	t.Run("crafted and spoofed packets", func(t *testing.T) {
		st0 := status(t, db)
		// A TCP ACK for a flow that never opened, from the stock peer
		// (which enforces nothing) to an allowed port: db denies it.
		tcp := make([]byte, 20)
		binary.BigEndian.PutUint16(tcp[0:], 40000)
		binary.BigEndian.PutUint16(tcp[2:], 5432)
		tcp[12], tcp[13] = 5<<4, 0x10 // ACK
		binary.BigEndian.PutUint16(tcp[14:], 1024)
		for _, flags := range []byte{0x10, 0x01, 0x04} { // ACK, FIN, RST
			tcp[13] = flags
			sendRaw(t, stock.host, rawPacket(stock.addr.Addr(), db.addr.Addr(), 6, tcp, 16))
		}
		// Out of policy (none is not admin), with admin's source: the
		// source check drops it before the firewall sees it.
		udp := make([]byte, 8+4)
		binary.BigEndian.PutUint16(udp[0:], 40000)
		binary.BigEndian.PutUint16(udp[2:], 9999)
		binary.BigEndian.PutUint16(udp[4:], 12)
		sendRaw(t, none.host, rawPacket(admin.addr.Addr(), db.addr.Addr(), 17, udp, 6))
		waitUntil(t, 5*time.Second, "db to count 3 policy drops and 1 spoofed source", func() bool {
			st := status(t, db)
			return st.Drops["policy"]-st0.Drops["policy"] >= 3 && st.Drops["source_not_allowed"]-st0.Drops["source_not_allowed"] >= 1
		})
		time.Sleep(200 * time.Millisecond)
		st := status(t, db)
		if got := st.Drops["policy"] - st0.Drops["policy"]; got != 3 {
			t.Errorf("db: %d policy drops, want 3 (ACK, FIN, RST without a flow)", got)
		}
		if got := st.Drops["source_not_allowed"] - st0.Drops["source_not_allowed"]; got != 1 {
			t.Errorf("db: %d source_not_allowed drops, want 1", got)
		}
	})

	t.Run("fragments", func(t *testing.T) {
		// 3000 bytes over a 1420-byte MTU: three fragments each way.
		if err := udpRoundTrip(admin.host, db.addr.Addr(), 9999, 3000, 5*time.Second); err != nil {
			t.Errorf("admin -> db, fragmented: %v", err)
		}
		st0 := status(t, db)
		inNetns(t, stock.host, func() error {
			c, err := net.Dial("udp4", netip.AddrPortFrom(db.addr.Addr(), 9999).String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(make([]byte, 3000))
			return err
		})
		waitUntil(t, 5*time.Second, "db to deny the 3 fragments", func() bool {
			return status(t, db).Drops["policy"]-st0.Drops["policy"] >= 3
		})
		time.Sleep(200 * time.Millisecond)
		if got := status(t, db).Drops["policy"] - st0.Drops["policy"]; got != 3 {
			t.Errorf("db: %d policy drops for a denied datagram in 3 fragments, want 3", got)
		}
	})

	t.Run("policy why live", func(t *testing.T) {
		for _, tc := range []struct{ from, to, port, want, rule string }{
			{"a", "b", "5432/tcp", "allow", "web-to-db"},
			{"e", "b", "5432/tcp", "allow", "web-to-db"},
			{"a", s.site.Addr.String(), "5432/tcp", "allow", "web-to-db"},
			{"a", "b", "22/tcp", "deny", "but not 22/tcp"},
			{"b", "a", "5432/tcp", "deny", "but not 5432/tcp"},
			{"c", "b", "22/tcp", "allow", "admin-any"},
			{"c", "d", "9999/udp", "allow", "admin-any"},
			{"d", "a", "80/tcp", "allow", "any-to-web"},
			{"d", "b", "5432/tcp", "deny", "but none to node b"},
			{"a", "c", "icmp", "deny", "but none to node c"},
			{"c", "a", "icmp", "allow", "admin-any"},
			{"192.0.2.1", "b", "5432/tcp", "deny", "but none to node b"},
		} {
			out, err := exec.Command(s.bin, "policy", "why", "--interface", db.iface, tc.from, tc.to, tc.port).CombinedOutput()
			if err != nil {
				t.Errorf("policy why %s %s %s: %v\n%s", tc.from, tc.to, tc.port, err, out)
				continue
			}
			if !strings.HasPrefix(string(out), tc.want+" ") || !strings.Contains(string(out), tc.rule) {
				t.Errorf("policy why %s %s %s: got %q, want %s naming %q", tc.from, tc.to, tc.port, out, tc.want, tc.rule)
			}
			if tc.want == "allow" && !strings.Contains(string(out), s.path+":") {
				t.Errorf("policy why %s %s %s: got %q, want the rule's file:line", tc.from, tc.to, tc.port, out)
			}
		}
	})

	t.Run("metrics count exactly", func(t *testing.T) {
		const denied, flows = 50, 20
		before := obsSamples(t, obsScrape(t, db))
		beforeAdmin := obsSamples(t, obsScrape(t, admin))
		inNetns(t, stock.host, func() error {
			c, err := net.Dial("udp4", netip.AddrPortFrom(db.addr.Addr(), 7777).String())
			if err != nil {
				return err
			}
			defer c.Close()
			for range denied {
				c.Write([]byte("denied"))
				time.Sleep(time.Millisecond)
			}
			return nil
		})
		for i := range flows {
			inNetns(t, admin.host, func() error {
				c, err := net.Dial("udp4", netip.AddrPortFrom(db.addr.Addr(), uint16(20000+i)).String())
				if err != nil {
					return err
				}
				defer c.Close()
				_, err = c.Write([]byte("one flow"))
				return err
			})
		}
		policyDrops := `overlay_drops_total{reason="policy"}`
		deniedIn := `overlay_policy_denied_packets_total{direction="in"}`
		adminFlows := `overlay_policy_flows_total{rule="admin-any"}`
		waitUntil(t, 5*time.Second, "db to count the denied datagrams", func() bool {
			return obsSample(t, obsSamples(t, obsScrape(t, db)), policyDrops)-obsSample(t, before, policyDrops) >= denied
		})
		time.Sleep(200 * time.Millisecond)
		text := obsScrape(t, db)
		after := obsSamples(t, text)
		afterAdmin := obsSamples(t, obsScrape(t, admin))
		for _, c := range []struct {
			what          string
			before, after map[string]float64
			series        string
			want          float64
		}{
			{"db", before, after, policyDrops, denied},
			{"db", before, after, deniedIn, denied},
			{"db", before, after, adminFlows, flows},
			{"admin", beforeAdmin, afterAdmin, adminFlows, flows},
		} {
			if got := obsSample(t, c.after, c.series) - obsSample(t, c.before, c.series); got != c.want {
				t.Errorf("%s: %s grew by %v, want %v", c.what, c.series, got, c.want)
			}
		}
		if !strings.Contains(text, `overlay_policy_info{hash="`) || !strings.Contains(text, "overlay_conntrack_entries ") {
			t.Error("db: no overlay_policy_info or overlay_conntrack_entries")
		}
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics on db: %v\n%s", err, out)
		}
	})

	t.Run("reload", func(t *testing.T) {
		c, err := dialTCP(web.host, db.addr.Addr(), 5432, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := echoTCP(c, []byte("before"), 5*time.Second); err != nil {
			t.Fatal(err)
		}
		hash := status(t, web).Firewall.PolicyHash
		handshakes := peerStatus(t, status(t, web), "b").HandshakesCompleted

		// A failing expectation: the whole file is refused, nothing changes.
		m := s.testMesh
		m.tail = strings.Replace(segRules, `name = "web-to-db"`, `name = "web-to-db-renamed"`, 1) +
			"\n[[expect]]\nfrom = \"node:a\"\nto = \"node:b\"\nport = \"22/tcp\"\nverdict = \"allow\"\n"
		m.write(m.nodes)
		if err := web.proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLog(t, web, "reload failed")
		if got := status(t, web).Firewall; got.PolicyHash != hash || got.Rules[0].Name != "web-to-db" {
			t.Errorf("a reload with a failing [[expect]] changed the rules: hash %s -> %s, first rule %s", hash, got.PolicyHash, got.Rules[0].Name)
		}
		if err := echoTCP(c, []byte("still"), 5*time.Second); err != nil {
			t.Fatalf("after the refused reload: %v", err)
		}

		// Without web-to-db the established flow is cut at its next packet.
		m.tail = strings.Replace(segRules, webToDB, "", 1)
		m.write(m.nodes)
		for _, n := range []*meshNode{web, db} {
			if err := n.proc.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			waitLog(t, n, "mesh file reloaded")
		}
		err = echoTCP(c, []byte("after"), rejectWithin)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("web's connection to db after the reload: %v, want reset within %v", err, rejectWithin)
		}
		st := status(t, web)
		if st.Firewall.ConntrackCut < 1 {
			t.Errorf("web: %d flows cut, want at least 1", st.Firewall.ConntrackCut)
		}
		if got := peerStatus(t, st, "b").HandshakesCompleted; got != handshakes {
			t.Errorf("web: %d handshakes with db after the reload, want %d (session kept)", got, handshakes)
		}
	})
}

// TestConntrackFull: a table of 1000 flows takes 5000, evicting the oldest
// and counting them, and new allowed flows still open.
func TestConntrackFull(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b := m.nodes[0], m.nodes[1]
	m.meshKeys = "conntrack_max = 1000\n"
	m.tail = "\n[[allow]]\nname = \"a-to-b\"\nfrom = [\"node:a\"]\nto = [\"node:b\"]\n"
	m.write(m.nodes)
	m.startAll()
	ping(t, a, b.addr.Addr())

	const flows = 5000
	inNetns(t, a.host, func() error {
		pc, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return err
		}
		defer pc.Close()
		for i := range flows {
			pc.WriteTo([]byte("x"), &net.UDPAddr{IP: b.addr.Addr().AsSlice(), Port: 20000 + i})
			if i%100 == 99 {
				time.Sleep(5 * time.Millisecond) // within every queue on the way
			}
		}
		return nil
	})
	for _, n := range []*meshNode{a, b} {
		var f struct{ entries, evicted uint64 }
		waitUntil(t, 5*time.Second, n.name+" to evict", func() bool {
			st := status(t, n).Firewall
			f.entries, f.evicted = uint64(st.ConntrackEntries), st.ConntrackEvictions
			return f.evicted >= flows-1000
		})
		if f.entries > 1000 {
			t.Errorf("%s: %d flows tracked, want at most 1000", n.name, f.entries)
		}
	}
	transfer(t, a.host, b.host, b.addr.Addr(), 1<<20)
}
