// Package flood sends a bounded flood of WireGuard handshake initiations,
// for the namespace tests and the bench: the load a node sees when the
// internet finds its port. Every initiation is well formed and carries a
// valid MAC1 for the responder's public key, so it passes the cheap check
// and costs the responder real work; its contents are otherwise random, so
// none can complete a handshake. It comes from many source addresses, each
// a socket bound to an address of a prefix the caller's network namespace
// owns (see nstest.AttachNetwork); the namespace's route sends the
// responder's cookie replies back to those sockets, where they are counted.
//
// A flood must only ever be aimed at a test namespace.
package flood

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
)

// Config is one flood.
type Config struct {
	Target    netip.AddrPort   // the responder's UDP endpoint
	Responder crypto.PublicKey // its public key, which MAC1 is computed from
	Sources   []netip.Addr     // the spoofed source addresses, one socket each
	Rate      int              // initiations per second, over all sources
	Duration  time.Duration    // how long to send
}

// Result is what a flood did.
type Result struct {
	Sent          uint64 // initiations sent
	SendErrors    uint64 // sends the local kernel refused (a full socket buffer)
	CookieReplies uint64 // cookie replies that came back to the sources
}

// distinct is how many different initiations a flood cycles through.
const distinct = 1024

// A Flood is a flood ready to run: its sockets are open. Open it inside the
// namespace that owns the sources (the sockets stay there), run it from
// anywhere.
type Flood struct {
	cfg   Config
	conns []*net.UDPConn
	msgs  [distinct][encap.InitiationSize]byte
}

// Open makes the initiations and opens one socket per source, connected to
// the target.
func Open(cfg Config) (*Flood, error) {
	if len(cfg.Sources) == 0 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		return nil, errors.New("flood: want sources, a positive rate and a positive duration")
	}
	f := &Flood{cfg: cfg}
	gen := crypto.NewCookieGenerator(cfg.Responder)
	now := time.Now()
	for i := range f.msgs {
		m := f.msgs[i][:]
		if _, err := rand.Read(m); err != nil {
			return nil, err
		}
		binary.LittleEndian.PutUint32(m, encap.TypeInitiation)
		gen.AddMACs(m, now) // MAC1 for the responder; MAC2 zero: no cookie
	}
	for _, src := range cfg.Sources {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), net.UDPAddrFromAddrPort(cfg.Target))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flood: source %s: %w", src, err)
		}
		f.conns = append(f.conns, c)
	}
	return f, nil
}

// Close closes the sockets.
func (f *Flood) Close() {
	for _, c := range f.conns {
		c.Close()
	}
}

// tick is the pacing interval: each tick sends its share of the rate.
const tick = time.Millisecond

// Run sends Rate initiations per second, round robin over the sources,
// for Duration, and then waits a moment for the last cookie replies. It
// returns early, with what it did so far, when stop is closed.
func (f *Flood) Run(stop <-chan struct{}) Result {
	var res Result
	var replies atomic.Uint64
	var wg sync.WaitGroup
	for _, c := range f.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256)
			for {
				n, err := c.Read(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
						return
					}
					continue // ICMP errors surface here on connected sockets
				}
				if n == encap.CookieReplySize && binary.LittleEndian.Uint32(buf) == encap.TypeCookieReply {
					replies.Add(1)
				}
			}
		}()
	}

	start := time.Now()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	next := 0
	sending := true
	for sending {
		elapsed := time.Since(start)
		if elapsed >= f.cfg.Duration {
			break
		}
		due := uint64(float64(f.cfg.Rate) * elapsed.Seconds())
		for res.Sent+res.SendErrors < due {
			c := f.conns[next%len(f.conns)]
			if _, err := c.Write(f.msgs[next%distinct][:]); err != nil {
				res.SendErrors++
			} else {
				res.Sent++
			}
			next++
		}
		select {
		case <-stop:
			sending = false
		case <-ticker.C:
		}
	}
	// Replies to the last initiations are still on their way.
	deadline := time.Now().Add(500 * time.Millisecond)
	for _, c := range f.conns {
		c.SetReadDeadline(deadline)
	}
	wg.Wait()
	res.CookieReplies = replies.Load()
	return res
}
