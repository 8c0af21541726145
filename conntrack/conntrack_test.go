package conntrack

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/packet"
)

const (
	syn    = packet.TCPFlagSYN
	synAck = packet.TCPFlagSYN | packet.TCPFlagACK
	ack    = packet.TCPFlagACK
	finAck = packet.TCPFlagFIN | packet.TCPFlagACK
	rst    = packet.TCPFlagRST
)

// step is one packet of a scenario: after some time, p in direction dir
// should get verdict want.
type step struct {
	after time.Duration
	p     pk
	dir   Direction
	want  Verdict
}

func run(t *testing.T, tb *Table, now *int64, steps []step) {
	t.Helper()
	for i, s := range steps {
		*now += int64(s.after)
		p, b := s.p.parsed(t)
		if got, _ := tb.Check(&p, b, s.dir, *now); got != s.want {
			t.Errorf("step %d (%v %v→%v proto %d, %v): got %v, want %v", i, s.dir, p.Src, p.Dst, p.Proto, s.after, got, s.want)
		}
	}
}

func TestRules(t *testing.T) {
	udpOut := udp(a4, b4, 40000, 53)
	udpBack := udp(b4, a4, 53, 40000)
	tcpOut := func(f uint8) pk { return tcp(a4, b4, 40000, 443, f) }
	tcpBack := func(f uint8) pk { return tcp(b4, a4, 443, 40000, f) }
	echoReq, echoRep := echo(a4, b4, 7, true), echo(b4, a4, 7, false)

	tests := []struct {
		name  string
		steps []step
	}{
		{"udp flow and its replies", []step{
			{0, udpOut, Out, PassNew},
			{time.Second, udpBack, In, PassEstablished},
			{time.Second, udpOut, Out, PassEstablished},
		}},
		{"unsolicited inbound is denied by policy", []step{
			{0, udpBack, In, DenyPolicy},
			{0, udp(b4, a4, 5000, 22), In, DenyPolicy},
		}},
		{"the same tuple the other way is not a reply", []step{
			{0, udpOut, Out, PassNew},
			{0, udpOut, In, DenyPolicy},
			{0, udpBack, Out, PassNew}, // a flow of its own, admitted outbound
		}},
		{"ipv6 udp", []step{
			{0, udp(a6, b6, 1, 2), Out, PassNew},
			{0, udp(b6, a6, 2, 1), In, PassEstablished},
			{0, udp(b6, a6, 2, 3), In, DenyPolicy},
		}},
		{"tcp handshake", []step{
			{0, tcpOut(syn), Out, PassNew},
			{0, tcpBack(synAck), In, PassEstablished},
			{0, tcpOut(ack), Out, PassEstablished},
			{0, tcpBack(ack), In, PassEstablished},
		}},
		{"tcp without syn opens nothing", []step{
			{0, tcpOut(ack), Out, DenyTCPNotSYN},
			{0, tcpOut(synAck), Out, DenyTCPNotSYN},
			{0, tcpOut(rst), Out, DenyTCPNotSYN},
			{0, tcpOut(syn | packet.TCPFlagFIN), Out, DenyTCPNotSYN},
			{0, tcpBack(synAck), In, DenyTCPNotSYN},
		}},
		{"tcp idle timeout", []step{
			{0, tcpOut(syn), Out, PassNew},
			{TCPTimeout - time.Second, tcpBack(ack), In, PassEstablished},
			{TCPTimeout - time.Second, tcpOut(ack), Out, PassEstablished},
			{TCPTimeout, tcpBack(ack), In, DenyTCPNotSYN},
		}},
		{"fin shortens to the linger", []step{
			{0, tcpOut(syn), Out, PassNew},
			{time.Second, tcpOut(finAck), Out, PassEstablished},
			{ClosingLinger - time.Second, tcpBack(finAck), In, PassEstablished},
			{ClosingLinger - time.Second, tcpOut(ack), Out, PassEstablished},
			{ClosingLinger, tcpBack(ack), In, DenyTCPNotSYN},
		}},
		{"rst shortens to the linger", []step{
			{0, tcpOut(syn), Out, PassNew},
			{0, tcpBack(rst), In, PassEstablished},
			{ClosingLinger, tcpOut(ack), Out, DenyTCPNotSYN},
		}},
		{"a syn after fin opens the tuple afresh", []step{
			{0, tcpOut(syn), Out, PassNew},
			{0, tcpOut(finAck), Out, PassEstablished},
			{time.Second, tcpOut(syn), Out, PassNew},
			{ClosingLinger, tcpBack(ack), In, PassEstablished}, // full TCP timeout again
		}},
		{"udp idle timeout", []step{
			{0, udpOut, Out, PassNew},
			{UDPTimeout - 1, udpBack, In, PassEstablished},
			{UDPTimeout, udpBack, In, DenyPolicy},
		}},
		{"other protocols time out after OtherTimeout", []step{
			{0, pk{src: a4, dst: b4, proto: 47}, Out, PassNew},
			{OtherTimeout - 1, pk{src: b4, dst: a4, proto: 47}, In, PassEstablished},
			{OtherTimeout, pk{src: b4, dst: a4, proto: 47}, In, DenyPolicy},
		}},
		{"icmp echo by identifier", []step{
			{0, echoReq, Out, PassNew},
			{0, echoRep, In, PassEstablished},
			{0, echo(b4, a4, 8, false), In, DenyNoFlow},
			{0, echo(b4, a4, 7, true), In, DenyPolicy}, // a request from the peer is a flow of its own
			{OtherTimeout, echoRep, In, DenyNoFlow},
		}},
		{"icmpv6 echo", []step{
			{0, echo(a6, b6, 0, true), Out, PassNew},
			{0, echo(b6, a6, 0, false), In, PassEstablished},
			{0, echo(a6, b6, 0, false), Out, DenyNoFlow}, // a reply the wrong way
		}},
		{"an echo reply never opens a flow", []step{
			{0, echo(a4, b4, 9, false), Out, DenyNoFlow},
			{0, echo(a4, b4, 9, false), Out, DenyNoFlow},
		}},
		{"icmp error about a flow passes", []step{
			{0, udpOut, Out, PassNew},
			{0, unreachable(b4, a4, udpOut), In, PassRelated},
			{0, unreachable(r4, a4, udpOut), In, PassRelated},
		}},
		{"icmp error about a reply passes", []step{
			{0, udpOut, Out, PassNew},
			{0, unreachable(a4, b4, udpBack), Out, PassRelated},
		}},
		{"icmp error about no flow is denied and opens none", []step{
			{0, unreachable(b4, a4, udpOut), In, DenyNoFlow},
			{0, unreachable(b4, a4, udpOut), In, DenyNoFlow},
			{0, udpBack, In, DenyPolicy},
		}},
		{"icmp error quoting the wrong direction", []step{
			{0, udpOut, Out, PassNew},
			{0, unreachable(a4, b4, udpOut), Out, DenyICMPQuote}, // sent to the quote's destination
			{0, pk{src: r4, dst: a4, proto: packet.ProtoICMP, icmpType: 3, quote: udpOut.bytes()[:24]}, In, DenyICMPQuote},
		}},
		{"icmp errors about tcp and echo, time exceeded and too big", []step{
			{0, tcpOut(syn), Out, PassNew},
			{0, pk{src: r4, dst: a4, proto: packet.ProtoICMP, icmpType: 11, quote: tcpOut(syn).bytes()}, In, PassRelated},
			{0, pk{src: r4, dst: a4, proto: packet.ProtoICMP, icmpType: 3, icmpCode: 4, quote: tcpOut(ack).bytes()[:28]}, In, PassRelated},
			{0, echo(a6, b6, 3, true), Out, PassNew},
			{0, pk{src: r6, dst: a6, proto: packet.ProtoICMPv6, icmpType: 2, quote: echo(a6, b6, 3, true).bytes()}, In, PassRelated},
			{0, pk{src: r6, dst: a6, proto: packet.ProtoICMPv6, icmpType: 2, quote: echo(a6, b6, 4, true).bytes()}, In, DenyNoFlow},
		}},
		{"an icmp error is not activity", []step{
			{0, udpOut, Out, PassNew},
			{UDPTimeout - time.Second, unreachable(b4, a4, udpOut), In, PassRelated},
			{time.Second, unreachable(b4, a4, udpOut), In, DenyNoFlow},
		}},
		{"fragments follow their first", []step{
			{0, udpOut.frag(0, true, 77), Out, PassNew},
			{0, udpOut.frag(1480, true, 77), Out, PassFragment},
			{0, udpOut.frag(2960, false, 77), Out, PassFragment},
			{0, udpOut.frag(1480, false, 78), Out, DenyFragment},
			{0, udpOut.frag(1480, false, 77), In, DenyFragment},
			{FragmentTimeout, udpOut.frag(1480, false, 77), Out, DenyFragment},
		}},
		{"fragments of a denied datagram are denied", []step{
			{0, udpBack.frag(0, true, 5), In, DenyPolicy},
			{0, udpBack.frag(8, false, 5), In, DenyFragment},
		}},
		{"ipv6 fragments follow their first", []step{
			{0, udp(a6, b6, 1, 2).frag(0, true, 1<<20), Out, PassNew},
			{0, udp(a6, b6, 1, 2).frag(1232, false, 1<<20), Out, PassFragment},
			{0, udp(a6, b6, 1, 2).frag(1232, false, 1), Out, DenyFragment},
		}},
		{"a reply's first fragment lets its rest in", []step{
			{0, udpOut, Out, PassNew},
			{0, udpBack.frag(0, true, 9), In, PassEstablished},
			{0, udpBack.frag(1480, false, 9), In, PassFragment},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var now int64 = 1e9
			run(t, New(0, outboundOnly()), &now, tt.steps)
		})
	}
}

func TestAdmitterSeesFirstPacket(t *testing.T) {
	adm := outboundOnly()
	tb := New(0, adm)
	p, b := tcp(a4, b4, 1234, 80, syn).parsed(t)
	v, rule := tb.Check(&p, b, Out, 1)
	if v != PassNew || rule != 1 {
		t.Fatalf("got %v rule %d, want new rule 1", v, rule)
	}
	if last := adm.last.Load(); last.p != p || last.dir != Out {
		t.Errorf("admitter got %+v %v, want %+v out", last.p, last.dir, p)
	}
	q, qb := tcp(b4, a4, 80, 1234, ack).parsed(t)
	if v, rule := tb.Check(&q, qb, In, 2); v != PassEstablished || rule != -1 {
		t.Errorf("reply: got %v rule %d, want established rule -1", v, rule)
	}
	if v, rule := tb.Check(&q, qb, Out, 3); v != DenyTCPNotSYN || rule != -1 {
		t.Errorf("ack out: got %v rule %d, want tcp-not-syn rule -1", v, rule)
	}
	r, rb := udp(b4, a4, 1, 2).parsed(t)
	if v, rule := tb.Check(&r, rb, In, 4); v != DenyPolicy || rule != -1 {
		t.Errorf("inbound: got %v rule %d, want policy rule -1", v, rule)
	}
	if got := adm.calls.Load(); got != 2 {
		t.Errorf("admitter calls: got %d, want 2 (no call for an established flow or a bare ack)", got)
	}
	st := tb.Stats()
	if st.Denied[Out][DenyTCPNotSYN] != 1 || st.Denied[In][DenyPolicy] != 1 || st.DeniedTotal(In) != 1 || st.Entries != 1 {
		t.Errorf("stats: got %+v, want 1 tcp-not-syn out, 1 policy in, 1 entry", st)
	}
}

func TestReload(t *testing.T) {
	tb := New(0, allowAll())
	var now int64
	web, dns := tcp(a4, b4, 1000, 80, syn), udp(b4, a4, 2000, 53) // dns opened inbound
	for _, f := range []struct {
		p   pk
		dir Direction
	}{{web, Out}, {dns, In}} {
		p, b := f.p.parsed(t)
		if v, _ := tb.Check(&p, b, f.dir, now); v != PassNew {
			t.Fatalf("opening %v: got %v, want new", f.p, v)
		}
	}
	adm := notPort(80)
	if gen := tb.SetAdmitter(adm); gen != 1 {
		t.Errorf("generation: got %d, want 1", gen)
	}

	// A reply of the dns flow is re-checked as the flow's first packet.
	p, b := udp(a4, b4, 53, 2000).parsed(t)
	if v, _ := tb.Check(&p, b, Out, now); v != PassEstablished {
		t.Errorf("dns reply after reload: got %v, want established", v)
	}
	want, _ := dns.parsed(t)
	if last := adm.last.Load(); last.p.Src != want.Src || last.p.Dst != want.Dst || last.p.SrcPort != 2000 || last.p.DstPort != 53 || last.p.Proto != packet.ProtoUDP || last.dir != In {
		t.Errorf("re-check saw %+v %v, want the first packet %+v in", last.p, last.dir, want)
	}
	if v, _ := tb.Check(&p, b, Out, now); v != PassEstablished || adm.calls.Load() != 1 {
		t.Errorf("second packet: got %v with %d admitter calls, want established with 1", v, adm.calls.Load())
	}

	// The web flow is now denied: cut at its next packet, a reply.
	p, b = tcp(b4, a4, 80, 1000, ack).parsed(t)
	if v, _ := tb.Check(&p, b, In, now); v != DenyCut {
		t.Errorf("web reply after reload: got %v, want cut", v)
	}
	if last := adm.last.Load(); last.p.TCPFlags != syn || last.p.DstPort != 80 || last.dir != Out {
		t.Errorf("re-check saw %+v %v, want a SYN to port 80 out", last.p, last.dir)
	}
	if v, _ := tb.Check(&p, b, In, now); v != DenyTCPNotSYN {
		t.Errorf("after the cut: got %v, want tcp-not-syn", v)
	}
	if st := tb.Stats(); st.Cut != 1 || st.Entries != 1 || st.Denied[In][DenyCut] != 1 {
		t.Errorf("stats: got cut %d entries %d denied-cut %d, want 1 1 1", st.Cut, st.Entries, st.Denied[In][DenyCut])
	}
}

func TestReloadICMPErrorCut(t *testing.T) {
	tb := New(0, allowAll())
	out := udp(a4, b4, 1, 80)
	p, b := out.parsed(t)
	tb.Check(&p, b, Out, 0)
	tb.SetAdmitter(notPort(80))
	p, b = unreachable(b4, a4, out).parsed(t)
	if v, _ := tb.Check(&p, b, In, 0); v != DenyCut {
		t.Errorf("error about a cut flow: got %v, want cut", v)
	}
}

func TestVerdictNames(t *testing.T) {
	for v := Verdict(0); v <= numVerdicts; v++ {
		pass := v >= PassEstablished && v <= PassFragment
		if v.Pass() != pass {
			t.Errorf("%d.Pass(): got %v, want %v", v, v.Pass(), pass)
		}
		name := v.String()
		if (name == "invalid") != (v == 0 || v == numVerdicts) {
			t.Errorf("%d.String(): got %q", v, name)
		}
	}
	if got := fmt.Sprint(In, Out); got != "in out" {
		t.Errorf("directions: got %q, want \"in out\"", got)
	}
}

// TestConcurrent runs one Out and three In goroutines, reloads and stats
// readers at once on a small table (run it with -race).
func TestConcurrent(t *testing.T) {
	const limit = 256
	tb := New(limit, allowAll())
	out, back := parsedFlows(t, 1024)
	var now atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			pkts, dir := out, Out
			if g > 0 {
				pkts, dir = back, In
			}
			for i := range 20000 {
				p := &pkts[(i*7+g*13)%len(pkts)]
				if v, _ := tb.Check(p, nil, dir, now.Add(int64(time.Millisecond))); v == 0 || v >= numVerdicts {
					t.Errorf("got verdict %d", v)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			tb.SetAdmitter(notPort(uint16(i)))
			if e := tb.Stats().Entries; e > limit {
				t.Errorf("%d entries, more than %d", e, limit)
			}
		}
	})
	wg.Wait()
	st := tb.Stats()
	if st.Entries > limit || st.Evictions == 0 {
		t.Errorf("entries %d (max %d), evictions %d: want at most max, and some evictions", st.Entries, limit, st.Evictions)
	}
}
