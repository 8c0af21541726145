//go:build netbench

package bench_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The firewall's cost: overlay-node with policyRules [[allow]] rules and
// policyFlows flows tracked at both ends before the single-stream run.
const (
	policyRules = 100
	policyFlows = 10000
	// policyFlowPort is the first of the policyFlows UDP ports the flows go
	// to, one flow per port, all allowed by the rule named policyFlowRule.
	policyFlowPort = 20000
	policyFlowRule = "bench-flows"
)

// policyTOML is the mesh's firewall: policyRules-3 rules that allow other
// flows (from CIDRs outside the mesh, from b to a, and from a to b on other
// ports), then the three the measurement uses, last: the tracked UDP flows,
// ICMP for the pings, and iperf3's port for the measured stream.
func policyTOML() meshExtra {
	var b strings.Builder
	rule := func(name, from, to string, ports ...string) {
		fmt.Fprintf(&b, "\n[[allow]]\nname = %q\nfrom = [%q]\nto = [%q]\nports = [", name, from, to)
		for i, p := range ports {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", p)
		}
		b.WriteString("]\n")
	}
	for i := range policyRules - 3 {
		name, port := fmt.Sprintf("bench-%d", i+1), 1000+10*i // 1000–1969: none the measurement uses
		switch i % 3 {
		case 0:
			rule(name, fmt.Sprintf("10.200.%d.0/24", i), "group:b", fmt.Sprintf("%d/tcp", port))
		case 1:
			rule(name, "group:b", "group:a", fmt.Sprintf("%d/tcp", port), fmt.Sprintf("%d/udp", port))
		case 2:
			rule(name, "group:a", "group:b", fmt.Sprintf("%d-%d/tcp", port, port+5))
		}
	}
	rule(policyFlowRule, "group:a", "group:b", fmt.Sprintf("%d-%d/udp", policyFlowPort, policyFlowPort+policyFlows-1))
	rule("bench-ping", "group:a", "group:b", "icmp")
	rule("bench-iperf3", "group:a", "group:b", iperfPort+"/tcp")
	return meshExtra{tables: b.String()}
}

// measurePolicy starts the overlay-node pair with policyTOML, opens
// policyFlows UDP flows from A to B, checks that both ends track them, and
// runs the single-stream TCP test through the firewall. It returns the
// figure as mTCP1Policy, and mPolicyKept against plain, the same round's
// sample of the plain pair (nil if that failed).
func measurePolicy(t *testing.T, p *vethPair, secs int, plain sample) sample {
	tp := startOverlayNodes(t, p, policyTOML())
	// A datagram lost on the way leaves its flow unopened; a second pass,
	// from the same socket, opens what the first missed and refreshes the
	// rest.
	var c *net.UDPConn
	if err := p.A.InNetns(func() (err error) {
		c, err = net.ListenUDP("udp", nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for pass := 1; ; pass++ {
		if err := openFlows(c, overlayB.Addr()); err != nil {
			t.Fatalf("opening %d flows: %v", policyFlows, err)
		}
		err := error(nil)
		for i, h := range []*nstest.Host{p.A, p.B} {
			entries, flows, werr := waitTracked(t, h, tp.ifaces[i], 3*time.Second)
			if werr != nil {
				err = fmt.Errorf("pass %d: %s: %w", pass, h, werr)
				break
			}
			t.Logf("pass %d: %s tracks %d flows, %d opened by %s", pass, h, entries, flows, policyFlowRule)
		}
		if err == nil {
			break
		}
		if pass == 2 {
			t.Fatal(err)
		}
		t.Log(err)
	}
	startIperfServer(t, p.B, overlayB.Addr())
	r, err := iperf3(t.Context(), p.A, overlayB.Addr(), secs)
	if err != nil {
		t.Fatalf("TCP, 1 stream, through the firewall: %v", err)
	}
	s := sample{mTCP1Policy: r.BitsPerSecond / 1e9}
	if v, ok := plain[mTCP1]; ok && v > 0 {
		s[mPolicyKept] = s[mTCP1Policy] / v
	}
	t.Logf("tcp1 through %d rules and %d flows: %.2f Gbit/s (%.0f retransmits), %.3f of the plain pair's",
		policyRules, policyFlows, s[mTCP1Policy], r.Retransmits, s[mPolicyKept])
	return s
}

// openFlows sends one datagram from c to each of policyFlows ports of dst:
// policyFlows flows for both ends' tables. Nothing listens there; B's
// port-unreachable replies quote live flows, so they pass. Datagrams go in
// bursts of 500 with a pause between, well below any queue on the way.
func openFlows(c *net.UDPConn, dst netip.Addr) error {
	payload := []byte("flow")
	for i := range policyFlows {
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, uint16(policyFlowPort+i)))
		if _, err := c.WriteToUDP(payload, to); err != nil {
			return err
		}
		if i%500 == 499 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// waitTracked reads `overlay-node status --json` on iface in h until its
// firewall tracks at least policyFlows flows opened by policyFlowRule, for
// at most wait, and returns the table's entries and that rule's flows.
func waitTracked(t *testing.T, h *nstest.Host, iface string, wait time.Duration) (entries, flows int, err error) {
	var st struct {
		Firewall struct {
			Enabled          bool `json:"enabled"`
			ConntrackEntries int  `json:"conntrack_entries"`
			Rules            []struct {
				Name  string `json:"name"`
				Flows int    `json:"flows"`
			} `json:"rules"`
		} `json:"firewall"`
	}
	limit := time.Now().Add(wait)
	for {
		out, err := run(t.Context(), h, 5*time.Second, nstest.BuildOverlayNode(t), "status", "--json", "--interface", iface)
		if err != nil {
			return 0, 0, err
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return 0, 0, fmt.Errorf("status --json: %w", err)
		}
		if !st.Firewall.Enabled || len(st.Firewall.Rules) != policyRules {
			return 0, 0, fmt.Errorf("status: firewall enabled %v with %d rules, want %d", st.Firewall.Enabled, len(st.Firewall.Rules), policyRules)
		}
		flows = 0
		for _, r := range st.Firewall.Rules {
			if r.Name == policyFlowRule {
				flows = r.Flows
			}
		}
		entries = st.Firewall.ConntrackEntries
		if flows >= policyFlows && entries >= policyFlows {
			return entries, flows, nil
		}
		if time.Now().After(limit) {
			return entries, flows, fmt.Errorf("tracks %d flows, %d opened by %s, want at least %d", entries, flows, policyFlowRule, policyFlows)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
