package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/flood"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// floodSources are the spoofed sources of the flood tests and the bench:
// addresses of a prefix routed in from beyond the node, as from the
// internet. 198.19.0.0/24 is in RFC 2544's benchmarking range.
var floodSources = netip.MustParsePrefix("198.19.0.0/24")

// floodSourceAddrs returns the first n addresses of floodSources.
func floodSourceAddrs(n int) []netip.Addr {
	var out []netip.Addr
	for a := floodSources.Addr().Next(); len(out) < n; a = a.Next() {
		out = append(out, a)
	}
	return out
}

// A flood of initiations with valid MAC1 from 150 spoofed sources hits b
// while TCP runs from a to b: the node answers with cookie replies and
// counts them, and the session between a and b is never disturbed (no new
// handshake, every transfer byte-exact). Throughput is the bench's to
// measure, not this test's.
func TestHandshakeFlood(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	m.startAll()
	a, b := m.nodes[0], m.nodes[1]
	ping(t, a, b.addr.Addr())
	before := peerStatus(t, status(t, b), "a")
	if before.LatestHandshake == nil {
		t.Fatal("no handshake between a and b before the flood")
	}

	internet := nstest.AttachNetwork(t, b.host, floodSources)
	var f *flood.Flood
	inNetns(t, internet.Host, func() (err error) {
		f, err = flood.Open(flood.Config{
			Target:    netip.AddrPortFrom(internet.GatewayAddr, 51820),
			Responder: b.key.PublicKey(),
			Sources:   floodSourceAddrs(150),
			Rate:      20000,
			Duration:  6 * time.Second,
		})
		return err
	})
	defer f.Close()
	done := make(chan flood.Result, 1)
	go func() { done <- f.Run(t.Context().Done()) }()

	transfers := 0
	var res flood.Result
	for flooding := true; flooding; {
		transfer(t, a.host, b.host, b.addr.Addr(), 16<<20)
		transfers++
		select {
		case res = <-done:
			flooding = false
		default:
		}
	}
	t.Logf("%d transfers of 16 MiB during the flood; flood: %+v", transfers, res)

	st := status(t, b)
	after := peerStatus(t, st, "a")
	if !after.LatestHandshake.Equal(*before.LatestHandshake) || after.HandshakesCompleted != before.HandshakesCompleted {
		t.Errorf("the session a-b was disturbed: handshake %v (%d completed) before the flood, %v (%d) after",
			before.LatestHandshake, before.HandshakesCompleted, after.LatestHandshake, after.HandshakesCompleted)
	}
	if res.Sent == 0 || res.CookieReplies == 0 {
		t.Errorf("flood sent %d initiations and got %d cookie replies back, want both > 0", res.Sent, res.CookieReplies)
	}
	if st.CookieRepliesSent < res.CookieReplies {
		t.Errorf("b counted %d cookie replies sent, but the sources received %d", st.CookieRepliesSent, res.CookieReplies)
	}
	t.Logf("b: %d cookie replies sent; drops %v", st.CookieRepliesSent, st.Drops)
	transfer(t, a.host, b.host, b.addr.Addr(), 4<<20)
}
