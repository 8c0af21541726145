package doctor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingInterval is how often Ping repeats its echo request while no reply
// has come: a first packet can be lost while the tunnel handshakes.
const pingInterval = 200 * time.Millisecond

// ErrNoReply means no echo reply came back in time.
var ErrNoReply = errors.New("no echo reply")

// Ping sends ICMP echo requests to dst, one every 200 ms, and returns the
// round-trip time of the first reply, or ErrNoReply when none has come by
// the context's deadline. It uses an unprivileged ping socket where the
// host allows one (net.ipv4.ping_group_range), else a raw socket, which
// needs CAP_NET_RAW. size is the echo's payload length.
func Ping(ctx context.Context, dst netip.Addr, size int) (time.Duration, error) {
	c, raw, err := listenICMP(dst.Is4())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-ctx.Done(); c.SetReadDeadline(time.Now()) }()

	id, seq := rand.IntN(0xffff), 0
	typ, replyType, proto := icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), 1
	if dst.Is6() {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if raw {
		to = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	sent := map[int]time.Time{}
	send := func() error {
		seq++
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: make([]byte, size)}}
		b, err := msg.Marshal(nil)
		if err != nil {
			return err
		}
		sent[seq] = time.Now()
		_, err = c.WriteTo(b, to)
		return err
	}
	if err := send(); err != nil {
		return 0, fmt.Errorf("send echo to %s: %w", dst, err)
	}
	buf := make([]byte, 1500+size)
	next := time.Now().Add(pingInterval)
	for {
		c.SetReadDeadline(next)
		if ctx.Err() != nil {
			return 0, ErrNoReply
		}
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, fmt.Errorf("read echo reply: %w", err)
			}
			if ctx.Err() != nil {
				return 0, ErrNoReply
			}
			// A send error (no route, a rejecting policy) is a reply
			// of sorts, but the caller only wants to know none came.
			send()
			next = time.Now().Add(pingInterval)
			continue
		}
		if addrOf(from) != dst {
			continue
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		// A ping socket sets the identifier itself; a raw one sees every
		// echo reply on the host.
		if !ok || raw && echo.ID != id {
			continue
		}
		if t, ok := sent[echo.Seq]; ok {
			return time.Since(t), nil
		}
	}
}

// listenICMP opens a ping socket, or a raw ICMP socket where ping sockets
// are not allowed. raw reports which.
func listenICMP(v4 bool) (c *icmp.PacketConn, raw bool, err error) {
	dgram, rawNet, any := "udp4", "ip4:icmp", "0.0.0.0"
	if !v4 {
		dgram, rawNet, any = "udp6", "ip6:ipv6-icmp", "::"
	}
	if c, err = icmp.ListenPacket(dgram, any); err == nil {
		return c, false, nil
	}
	if c, err = icmp.ListenPacket(rawNet, any); err == nil {
		return c, true, nil
	}
	return nil, false, fmt.Errorf("open an ICMP socket: %w (hint: run as root, or allow ping sockets with sysctl net.ipv4.ping_group_range)", err)
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.IPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// udpAnswer is what a UDP datagram to an endpoint brings back.
type udpAnswer uint8

const (
	udpSilent      udpAnswer = iota // nothing: something takes datagrams there, or drops them on the way
	udpRefused                      // ICMP port unreachable: nothing listens on the port
	udpUnreachable                  // ICMP host or network unreachable: the underlay cannot reach it
)

// probeUDP sends two one-byte datagrams to ep from an ephemeral port and
// waits up to wait for an ICMP error. A WireGuard endpoint drops the
// datagram without a word (it counts it as malformed), so silence is what
// a live peer gives.
func probeUDP(ep netip.AddrPort, wait time.Duration) udpAnswer {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ep))
	if err != nil {
		return answerOf(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	for range 2 {
		if _, err := c.Write([]byte{0}); err != nil {
			return answerOf(err)
		}
		c.SetReadDeadline(time.Now().Add(wait / 2))
		if _, err := c.Read(buf); err != nil {
			if a := answerOf(err); a != udpSilent {
				return a
			}
		}
	}
	return udpSilent
}

func answerOf(err error) udpAnswer {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return udpRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return udpUnreachable
	}
	return udpSilent
}
