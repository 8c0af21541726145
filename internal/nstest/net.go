package nstest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// InNetns runs fn on an OS thread switched into h's namespace. Sockets that fn
// opens stay in that namespace for their whole life, whichever thread later
// uses them, so the test process can talk from inside any namespace without a
// helper binary.
func (h *Host) InNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is locked, and returned to the scheduler only if it could
		// be switched back; otherwise it dies with this goroutine.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(h.Name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", h.Name, err)
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", h.Name, err)
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Ping parameters: a few echoes, a short deadline.
const (
	pingCount    = 3
	pingInterval = 200 * time.Millisecond
	pingTimeout  = 5 * time.Second
)

// Ping sends ICMP echo requests from inside from's namespace to the IPv4
// address addr, one every 200 ms, and returns nil once 3 replies have come
// back, or an error if they have not within 5 s. Early losses, as while a
// tunnel handshakes, are tolerated.
func Ping(t testing.TB, from *Host, addr string) error {
	t.Helper()
	dst, err := netip.ParseAddr(addr)
	if err != nil || !dst.Is4() {
		return fmt.Errorf("ping %q: not an IPv4 address", addr)
	}
	var conn *icmp.PacketConn
	err = from.InNetns(func() (err error) {
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w", addr, from.Name, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(pingTimeout))

	// The raw socket sees all ICMP in the namespace: replies are told apart
	// by this ID.
	id := rand.IntN(1 << 16)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(pingInterval)
		defer tick.Stop()
		for seq := 0; ; seq++ {
			msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("nstest")}}
			b, _ := msg.Marshal(nil)
			conn.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	got := 0
	buf := make([]byte, 1500)
	for got < pingCount {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping %s from %s: %d of %d replies: %w", addr, from.Name, got, pingCount, err)
		}
		msg, err := icmp.ParseMessage(1, buf[:n]) // 1: ICMP for IPv4
		if err != nil || msg.Type != ipv4.ICMPTypeEchoReply || peer.String() != addr {
			continue
		}
		if echo, ok := msg.Body.(*icmp.Echo); ok && echo.ID == id {
			got++
		}
	}
	return nil
}

// transferSeed seeds the stream Transfer sends. It is fixed so that a failing
// transfer can be replayed.
var transferSeed = [32]byte{'n', 's', 't', 'e', 's', 't'}

// Transfer moves size pseudo-random bytes over one TCP connection, from a
// sender in from's namespace to a receiver listening on toAddr (an IP address)
// in to's namespace, and returns the SHA-256 of the bytes sent and of the bytes
// received. They are equal exactly when the stream arrived intact. err reports
// a failure to connect or an I/O error on either side, including a timeout: the
// transfer must average 1 MiB/s, after a 30 s allowance.
func Transfer(t testing.TB, from, to *Host, toAddr string, size int64) (sent, received [sha256.Size]byte, err error) {
	t.Helper()
	return TransferPaced(t, from, to, toAddr, size, nil)
}

// TransferPaced is Transfer whose sender reads the stream through pace, if
// not nil, which may hold reads back: to keep the transfer running until
// something has happened, say.
func TransferPaced(t testing.TB, from, to *Host, toAddr string, size int64, pace func(io.Reader) io.Reader) (sent, received [sha256.Size]byte, err error) {
	t.Helper()
	deadline := time.Now().Add(30*time.Second + time.Duration(size>>20)*time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	fail := func(err error) ([sha256.Size]byte, [sha256.Size]byte, error) {
		return sent, received, fmt.Errorf("transfer %s -> %s (%s): %w", from.Name, to.Name, toAddr, err)
	}

	var ln *net.TCPListener
	err = to.InNetns(func() error {
		l, err := net.Listen("tcp", net.JoinHostPort(toAddr, "0"))
		ln, _ = l.(*net.TCPListener)
		return err
	})
	if err != nil {
		return fail(err)
	}
	defer ln.Close()
	ln.SetDeadline(deadline)

	type result struct {
		n   int64
		sum [sha256.Size]byte
		err error
	}
	recv := make(chan result, 1)
	go func() {
		var r result
		c, err := ln.Accept()
		if err != nil {
			r.err = fmt.Errorf("receiver: %w", err)
			recv <- r
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		h := sha256.New()
		r.n, r.err = io.Copy(h, c)
		if r.err != nil {
			r.err = fmt.Errorf("receiver: %w", r.err)
		}
		h.Sum(r.sum[:0])
		recv <- r
	}()

	var conn *net.TCPConn
	err = from.InNetns(func() error {
		c, err := new(net.Dialer).DialContext(ctx, "tcp", ln.Addr().String())
		conn, _ = c.(*net.TCPConn)
		return err
	})
	if err != nil {
		ln.Close() // unblocks the receiver
		<-recv
		return fail(fmt.Errorf("sender: %w", err))
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	h := sha256.New()
	var src io.Reader = io.LimitReader(rand.NewChaCha8(transferSeed), size)
	if pace != nil {
		src = pace(src)
	}
	n, sendErr := io.Copy(io.MultiWriter(conn, h), src)
	h.Sum(sent[:0])
	if sendErr == nil {
		sendErr = conn.CloseWrite()
	}
	if sendErr != nil {
		conn.Close() // unblocks the receiver
	}
	r := <-recv
	received = r.sum
	switch {
	case sendErr != nil:
		return fail(fmt.Errorf("sender, after %d of %d bytes: %w", n, size, sendErr))
	case r.err != nil:
		return fail(fmt.Errorf("after %d of %d bytes: %w", r.n, size, r.err))
	case r.n != size:
		t.Logf("nstest: transfer %s -> %s: sent %d bytes, received %d", from.Name, to.Name, size, r.n)
	}
	return sent, received, nil
}
