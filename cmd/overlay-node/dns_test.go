package main

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/overlay-node/overlay-node/dnszone"
)

// testDNSState is a mesh state whose DNS listens on 127.0.0.1, port 0,
// with one node named self; no domain turns DNS off.
func testDNSState(t *testing.T, domain string) *meshState {
	t.Helper()
	if domain == "" {
		return &meshState{}
	}
	z, err := dnszone.New(dnszone.Input{Domain: domain, Self: "self",
		Nodes: []dnszone.Node{{Name: "self", Addresses: []netip.Addr{netip.MustParseAddr("10.100.0.1")}}}})
	if err != nil {
		t.Fatal(err)
	}
	return &meshState{dns: dnsSettings{domain: domain, zone: z, upstreams: []netip.AddrPort{},
		listen: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}}}
}

// askSelf asks every address s serves for self.<domain>; it returns the
// rcodes, or nil when nothing is served.
func askSelf(t *testing.T, s *dnsService, domain string) []int {
	t.Helper()
	var out []int
	for _, ap := range s.srv.Addrs() {
		c := &dns.Client{Timeout: time.Second}
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion("self."+domain+".", dns.TypeA), ap.String())
		if err != nil {
			t.Fatalf("query %s: %v", ap, err)
		}
		out = append(out, r.Rcode)
	}
	return out
}

// The DNS service's reload is all or nothing: listeners it opens close on
// undo, listeners it no longer needs close only at commit, and the zone
// swaps back on undo.
func TestDNSServiceReload(t *testing.T) {
	n := &node{log: slog.New(slog.DiscardHandler), iface: "ovltest0"}
	s := &dnsService{}
	if err := s.open(n, testDNSState(t, "one.test")); err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.serve(n)
	ok, refused := []int{dns.RcodeSuccess}, []int{dns.RcodeRefused} // no upstream: outside names are refused
	if got := askSelf(t, s, "one.test"); !slices.Equal(got, ok) {
		t.Fatalf("after open: got rcodes %v, want %v", got, ok)
	}

	// A new domain, undone: the old zone answers again.
	undo, err := s.reload(n, testDNSState(t, "two.test"))
	if err != nil {
		t.Fatal(err)
	}
	if got := askSelf(t, s, "two.test"); !slices.Equal(got, ok) {
		t.Errorf("after reload to two.test: got %v, want %v", got, ok)
	}
	undo()
	if got := askSelf(t, s, "two.test"); !slices.Equal(got, refused) {
		t.Errorf("after undo: two.test got %v, want %v", got, refused)
	}

	// DNS off: the listener stays until commit, and undo keeps it.
	undo, err = s.reload(n, testDNSState(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(s.srv.Addrs()); got != 1 {
		t.Fatalf("DNS off before commit: %d listeners, want 1", got)
	}
	undo()
	if got := askSelf(t, s, "one.test"); !slices.Equal(got, ok) {
		t.Errorf("after an undone turn-off: got %v, want %v", got, ok)
	}
	if _, err = s.reload(n, testDNSState(t, "")); err != nil {
		t.Fatal(err)
	}
	s.commit()
	if got := s.srv.Addrs(); len(got) != 0 {
		t.Fatalf("DNS off after commit: listening on %v, want nothing", got)
	}

	// DNS on again, undone: the new listener closes.
	undo, err = s.reload(n, testDNSState(t, "three.test"))
	if err != nil {
		t.Fatal(err)
	}
	if got := askSelf(t, s, "three.test"); !slices.Equal(got, ok) {
		t.Errorf("DNS on again: got %v, want %v", got, ok)
	}
	undo()
	if got := s.srv.Addrs(); len(got) != 0 {
		t.Errorf("after an undone turn-on: listening on %v, want nothing", got)
	}
}
