package tunnel

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/conntrack"
	"github.com/overlay-node/overlay-node/packet"
	"github.com/overlay-node/overlay-node/policy"
)

// setFirewall loads fw into n's engine, keeping its peers.
func (n *testNode) setFirewall(t testing.TB, fw Firewall) {
	t.Helper()
	var peers []PeerConfig
	for _, p := range n.dev.Snapshot().Peers {
		peers = append(peers, PeerConfig{Name: p.Name, PublicKey: p.PublicKey, AllowedIPs: p.AllowedIPs, Endpoint: p.Endpoint})
	}
	if err := n.dev.Reload(peers, fw); err != nil {
		t.Fatal(err)
	}
}

// rulesFor compiles one rule per ports entry, each from a to b.
func rulesFor(a, b *testNode, ports ...string) *policy.Policy {
	var rules []policy.Rule
	for _, ps := range ports {
		pt, err := policy.ParsePorts(ps)
		if err != nil {
			panic(err)
		}
		rules = append(rules, policy.Rule{Name: "a-to-b-" + ps, Pos: "test", From: []netip.Prefix{netip.PrefixFrom(a.addr, 32)},
			To: []netip.Prefix{netip.PrefixFrom(b.addr, 32)}, Ports: []policy.Ports{pt}})
	}
	return policy.Compile(rules)
}

// udpPacket builds an IPv4/UDP packet with ports.
func udpPacket(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	pkt := ipv4Packet(src, dst, payload)
	binary.BigEndian.PutUint16(pkt[20:], sport)
	binary.BigEndian.PutUint16(pkt[22:], dport)
	return pkt
}

// tcpPacket builds an IPv4/TCP segment with flags, seq and ack.
func tcpPacket(src, dst netip.Addr, sport, dport uint16, flags uint8, seq, ack uint32, payload []byte) []byte {
	pkt := make([]byte, 40+len(payload))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = 64, packet.ProtoTCP
	s, d := src.As4(), dst.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint16(pkt[20:], sport)
	binary.BigEndian.PutUint16(pkt[22:], dport)
	binary.BigEndian.PutUint32(pkt[24:], seq)
	binary.BigEndian.PutUint32(pkt[28:], ack)
	pkt[32], pkt[33] = 5<<4, flags
	copy(pkt[40:], payload)
	return pkt
}

// nextTUNPacket returns the next packet n's engine writes to its TUN.
func nextTUNPacket(t *testing.T, n *testNode) []byte {
	t.Helper()
	select {
	case f := <-n.tun.Outbound:
		return f.Packet
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing written to %s's TUN", n.addr)
	}
	return nil
}

// TestFirewallInbound: b enforces alone (a has no rules, like a stock
// WireGuard peer): an allowed flow and its replies pass, anything else
// from a is dropped and counted as a policy drop, and never answered.
func TestFirewallInbound(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	b.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp"), Reject: true})

	q := udpPacket(a.addr, b.addr, 4000, 53, []byte("query"))
	a.tun.Inject(q)
	expectPacket(t, b, q)
	r := udpPacket(b.addr, a.addr, 53, 4000, []byte("answer"))
	b.tun.Inject(r)
	expectPacket(t, a, r)

	for _, p := range [][]byte{
		udpPacket(a.addr, b.addr, 4000, 54, []byte("other port")),
		tcpPacket(a.addr, b.addr, 4000, 53, packet.TCPFlagSYN, 1, 0, nil),
		tcpPacket(a.addr, b.addr, 4000, 53, packet.TCPFlagACK, 1, 1, nil), // never opened
	} {
		a.tun.Inject(p)
	}
	waitFor(t, "three policy drops", func() bool { return b.drops(DropPolicy) == 3 })
	expectNoPacket(t, b)
	expectNoPacket(t, a) // inbound denials are not answered

	st := b.dev.Snapshot().Firewall
	if !st.Enabled || st.Rules[0].Flows != 1 || st.Denied(conntrack.In) != 3 || st.Conntrack.Entries != 1 {
		t.Errorf("got firewall stats %+v, want enabled, 1 flow of the rule, 3 denied in, 1 entry", st)
	}
	if got := b.dev.Snapshot().Peers[0].Drops[DropPolicy]; got != 3 {
		t.Errorf("got %d policy drops on the peer, want 3", got)
	}
}

// TestFirewallRejectTCP: a denied outbound SYN is answered at once with a
// RST that acknowledges it, and a denied segment with ACK with a RST whose
// sequence is its acknowledgement (RFC 793).
func TestFirewallRejectTCP(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp"), Reject: true})

	for _, tc := range []struct {
		name           string
		flags          uint8
		payload        int
		wantSeq, wantA uint32
		wantFlags      uint8
	}{
		{"syn", packet.TCPFlagSYN, 0, 0, 1001, packet.TCPFlagRST | packet.TCPFlagACK},
		{"data without ack", packet.TCPFlagPSH, 10, 0, 1010, packet.TCPFlagRST | packet.TCPFlagACK},
		{"ack", packet.TCPFlagACK, 0, 7777, 0, packet.TCPFlagRST},
	} {
		a.tun.Inject(tcpPacket(a.addr, b.addr, 40000, 80, tc.flags, 1000, 7777, make([]byte, tc.payload)))
		got := nextTUNPacket(t, a)
		h, err := packet.Parse(got)
		if err != nil {
			t.Fatalf("%s: answer %x does not parse: %v", tc.name, got, err)
		}
		seq, ack := binary.BigEndian.Uint32(got[24:]), binary.BigEndian.Uint32(got[28:])
		if h.Src != b.addr || h.Dst != a.addr || h.SrcPort != 80 || h.DstPort != 40000 || h.TCPFlags != tc.wantFlags ||
			seq != tc.wantSeq || ack != tc.wantA || len(got) != 40 {
			t.Errorf("%s: got %v:%d > %v:%d flags %#x seq %d ack %d len %d, want RST from b:80 to a:40000 flags %#x seq %d ack %d len 40",
				tc.name, h.Src, h.SrcPort, h.Dst, h.DstPort, h.TCPFlags, seq, ack, len(got), tc.wantFlags, tc.wantSeq, tc.wantA)
		}
		if packet.Fold(packet.Sum(got[:20], 0)) != 0xffff {
			t.Errorf("%s: IPv4 header checksum does not verify", tc.name)
		}
		if packet.Fold(packet.Sum(got[20:], pseudoSum(got, 4, packet.ProtoTCP, 20))) != 0xffff {
			t.Errorf("%s: TCP checksum does not verify", tc.name)
		}
	}
	// A RST is never answered.
	a.tun.Inject(tcpPacket(a.addr, b.addr, 40000, 80, packet.TCPFlagRST, 1, 0, nil))
	expectNoPacket(t, a)
	expectNoPacket(t, b)
	if got := a.dev.Snapshot().Firewall.Denied(conntrack.Out); got != 4 {
		t.Errorf("got %d packets denied out, want 4", got)
	}
	if got := a.drops(DropPolicy); got != 0 {
		t.Errorf("got %d policy drops, want 0: outbound denials are not drops of the mesh", got)
	}
}

// TestFirewallRejectICMP: a denied UDP datagram, over IPv4 and over IPv6,
// is answered with destination unreachable, administratively prohibited,
// quoting it; with deny = drop nothing is answered.
func TestFirewallRejectICMP(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "5432/tcp"), Reject: true})

	d := udpPacket(a.addr, b.addr, 5000, 53, []byte("denied datagram"))
	a.tun.Inject(d)
	got := nextTUNPacket(t, a)
	h, err := packet.Parse(got)
	if err != nil {
		t.Fatalf("answer %x does not parse: %v", got, err)
	}
	if h.Src != b.addr || h.Dst != a.addr || !h.IsICMPError() || h.ICMPType != 3 || h.ICMPCode != 13 ||
		string(got[28:]) != string(d) {
		t.Errorf("got %x, want ICMP 3/13 from b to a quoting %x", got, d)
	}
	if packet.Fold(packet.Sum(got[:20], 0)) != 0xffff || packet.Fold(packet.Sum(got[20:], 0)) != 0xffff {
		t.Errorf("answer %x: checksums do not verify", got)
	}

	// IPv6, built in place in a buffer: the checksum covers the pseudo-header.
	src, dst := netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2")
	buf := make([]byte, 2000)
	pkt := buf[:48+4]
	binary.BigEndian.PutUint32(pkt, 6<<28)
	binary.BigEndian.PutUint16(pkt[4:], 12)
	pkt[6], pkt[7] = packet.ProtoUDP, 64
	s16, d16 := src.As16(), dst.As16()
	copy(pkt[8:], s16[:])
	copy(pkt[24:], d16[:])
	binary.BigEndian.PutUint16(pkt[40:], 5000)
	binary.BigEndian.PutUint16(pkt[42:], 53)
	binary.BigEndian.PutUint16(pkt[44:], 12)
	orig := append([]byte(nil), pkt...)
	h6, err := packet.Parse(pkt)
	if err != nil {
		t.Fatal(err)
	}
	n := rejectInPlace(buf, &h6)
	ans := buf[:n]
	a6, err := packet.Parse(ans)
	if err != nil || a6.Src != dst || a6.Dst != src || a6.ICMPType != 1 || a6.ICMPCode != 1 || string(ans[48:]) != string(orig) {
		t.Errorf("got %x (%v), want ICMPv6 1/1 from %v to %v quoting %x", ans, err, dst, src, orig)
	}
	if packet.Fold(packet.Sum(ans[40:], pseudoSum(ans, 6, packet.ProtoICMPv6, n-40))) != 0xffff {
		t.Errorf("ICMPv6 checksum does not verify")
	}

	a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "5432/tcp")})
	a.tun.Inject(d)
	expectNoPacket(t, a)
	expectNoPacket(t, b)
}

// TestFirewallReloadCuts: a reload that removes the rule of an
// established flow cuts it at its next packet, counted, while the session
// stays; a reload back to no rules takes the firewall off the path.
func TestFirewallReloadCuts(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	b.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp", "5432/tcp")})
	syn := tcpPacket(a.addr, b.addr, 40000, 5432, packet.TCPFlagSYN, 1, 0, nil)
	a.tun.Inject(syn)
	expectPacket(t, b, syn)
	sess := b.dev.Peers()[0].current.Load()

	b.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp")})
	a.tun.Inject(tcpPacket(a.addr, b.addr, 40000, 5432, packet.TCPFlagACK, 2, 1, nil))
	waitFor(t, "a policy drop", func() bool { return b.drops(DropPolicy) == 1 })
	st := b.dev.Snapshot().Firewall
	if st.Conntrack.Cut != 1 || st.Conntrack.Entries != 0 || len(st.Rules) != 1 || st.Rules[0].Flows != 0 {
		t.Errorf("got %+v, want 1 cut, no entries, one rule with no flows", st)
	}
	if b.dev.Peers()[0].current.Load() != sess {
		t.Error("the reload replaced the session")
	}

	b.setFirewall(t, Firewall{})
	p := udpPacket(a.addr, b.addr, 1, 2, []byte("anything"))
	a.tun.Inject(p)
	expectPacket(t, b, p)
	if st := b.dev.Snapshot().Firewall; st.Enabled || st.PolicyHash != "" {
		t.Errorf("got %+v, want the firewall off", st)
	}
}

// Within one batch the table sees a flow's first packet and then only
// packets that change its state; the next batch sees it again.
func TestFirewallRunSkipsTable(t *testing.T) {
	a, b := newPair(t, nil)
	now := a.dev.monotonic(time.Now())
	deny := func() { a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "9/udp")}) }

	a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp", "5432/tcp")})
	fw := a.dev.peers.Load().fw
	udp := udpPacket(a.addr, b.addr, 40000, 53, nil)
	h, _ := packet.Parse(udp)
	var run flowRun
	for i, want := range []bool{true, true} { // opens, then established
		if got := fw.check(&run, &h, udp, conntrack.Out, now); got != want {
			t.Fatalf("udp packet %d: got %v, want %v", i, got, want)
		}
	}
	deny() // the table now cuts the flow at its next look
	if !fw.check(&run, &h, udp, conntrack.Out, now) {
		t.Error("a packet of the established run went to the table")
	}
	run = flowRun{} // a new batch
	if fw.check(&run, &h, udp, conntrack.Out, now) {
		t.Error("a new batch passed a flow the rules no longer allow")
	}

	a.setFirewall(t, Firewall{Policy: rulesFor(a, b, "53/udp", "5432/tcp")})
	fw, run = a.dev.peers.Load().fw, flowRun{}
	for i, flags := range []uint8{packet.TCPFlagSYN, packet.TCPFlagACK} {
		p := tcpPacket(a.addr, b.addr, 40001, 5432, flags, uint32(i), 0, nil)
		h, _ := packet.Parse(p)
		if !fw.check(&run, &h, p, conntrack.Out, now) {
			t.Fatalf("tcp packet %d (flags %#x) denied", i, flags)
		}
	}
	deny()
	fin := tcpPacket(a.addr, b.addr, 40001, 5432, packet.TCPFlagFIN|packet.TCPFlagACK, 2, 0, nil)
	h, _ = packet.Parse(fin)
	if fw.check(&run, &h, fin, conntrack.Out, now) {
		t.Error("a FIN passed on the run's verdict: it must go to the table")
	}
}
