package main

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// digResult is what dig printed: the status and the records of each
// section, each as "name TYPE rdata" with single spaces, sorted.
type digResult struct {
	status, flags                 string
	answer, authority, additional []string
}

// digAt runs dig in h's namespace against server, port 53.
func digAt(t *testing.T, h *nstest.Host, server netip.Addr, args ...string) digResult {
	t.Helper()
	all := append([]string{"@" + server.String(), "+time=2", "+tries=2", "+nottlid", "+nocl",
		"+noall", "+comments", "+answer", "+authority", "+additional"}, args...)
	out, err := h.Exec(t.Context(), "dig", all...)
	if err != nil {
		t.Fatalf("dig %s: %v", strings.Join(args, " "), err)
	}
	var r digResult
	var cur *[]string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.Contains(line, "->>HEADER<<-"):
			_, st, _ := strings.Cut(line, "status: ")
			r.status, _, _ = strings.Cut(st, ",")
		case strings.HasPrefix(line, ";; flags:"):
			r.flags, _, _ = strings.Cut(strings.TrimPrefix(line, ";; flags: "), ";")
		case line == ";; ANSWER SECTION:":
			cur = &r.answer
		case line == ";; AUTHORITY SECTION:":
			cur = &r.authority
		case line == ";; ADDITIONAL SECTION:":
			cur = &r.additional
		case line == "" || strings.HasPrefix(line, ";"):
		case cur != nil:
			*cur = append(*cur, strings.Join(strings.Fields(line), " "))
		}
	}
	for _, s := range []*[]string{&r.answer, &r.authority, &r.additional} {
		slices.Sort(*s)
	}
	t.Logf("dig @%s %s: %s [%s] answer=%q authority=%q additional=%q", server, strings.Join(args, " "),
		r.status, r.flags, r.answer, r.authority, r.additional)
	return r
}

// expectDig fails t unless dig gets status and exactly the answer records.
func expectDig(t *testing.T, h *nstest.Host, server netip.Addr, status string, answer []string, args ...string) digResult {
	t.Helper()
	r := digAt(t, h, server, args...)
	slices.Sort(answer)
	if r.status != status || !slices.Equal(r.answer, answer) {
		t.Errorf("dig @%s %s: got %s %q, want %s %q", server, strings.Join(args, " "), r.status, r.answer, status, answer)
	}
	return r
}

// netnsResolvConf gives processes started in h's namespace from now on
// their own /etc/resolv.conf: ip netns exec bind-mounts
// /etc/netns/NAME/resolv.conf over it.
func netnsResolvConf(t *testing.T, h *nstest.Host, nameservers ...netip.Addr) {
	t.Helper()
	dir := filepath.Join("/etc/netns", h.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove("/etc/netns") // only if no one else uses it
	})
	var b strings.Builder
	for _, a := range nameservers {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	b.WriteString("options timeout:2 attempts:2\n")
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// outsideAddr is what the test's upstream resolver answers for every A
// query.
const outsideAddr = "192.0.2.7"

// startUpstream runs a DNS server on addr:53 in h's namespace that answers
// every A query with outsideAddr, as an ISP's resolver would for names
// outside the mesh.
func startUpstream(t *testing.T, h *nstest.Host, addr netip.Addr) {
	t.Helper()
	var pc net.PacketConn
	if err := h.InNetns(func() (err error) {
		pc, err = net.ListenPacket("udp", netip.AddrPortFrom(addr, 53).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg).SetReply(req)
		m.RecursionAvailable = true
		if q := req.Question[0]; q.Qtype == dns.TypeA {
			rr, _ := dns.NewRR(q.Name + " 300 IN A " + outsideAddr)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m) //nolint:errcheck // the client retries
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe() //nolint:errcheck // ends at Shutdown
	<-started
	t.Cleanup(func() { srv.Shutdown() }) //nolint:errcheck
}

// serveHTTP answers GET / with body on addr in h's namespace.
func serveHTTP(t *testing.T, h *nstest.Host, addr netip.AddrPort, body string) {
	t.Helper()
	var ln net.Listener
	if err := h.InNetns(func() (err error) {
		ln, err = net.Listen("tcp", addr.String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends at Close
	t.Cleanup(func() { srv.Close() })
}

// dnsMeshKeys turn DNS on in the test mesh; dnsServices are its services.
const (
	dnsMeshKeys = "domain = \"Mesh.Internal\"\n"
	dnsServices = `
[[service]]
name = "postgres"
nodes = ["b", "c"]
port = 5432
protocol = "tcp"

[[service]]
name = "web"
nodes = ["c"]
port = 8080
protocol = "tcp"
`
)

// bigService returns n nodes that never run, 10.100.0.10 and on, and a
// service "big" with an instance on each.
func bigService(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	var names []string
	for i := range n {
		key, err := crypto.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("n%d", 10+i)
		names = append(names, fmt.Sprintf("%q", name))
		fmt.Fprintf(&b, "\n[[node]]\nname = %q\npublic_key = %q\naddress = \"10.100.0.%d/24\"\n", name, key.PublicKey().String(), 10+i)
	}
	fmt.Fprintf(&b, "\n[[service]]\nname = \"big\"\nnodes = [%s]\nport = 80\nprotocol = \"tcp\"\n", strings.Join(names, ", "))
	return b.String()
}

// Three nodes serve the mesh domain. dig against two of them, across the
// mesh and locally; glibc resolves mesh names and makes a TCP connection
// by name; a name outside the domain is forwarded to the upstream of the
// host's resolv.conf, or refused when there is none; a reload changes the
// answers at once; status shows the server.
func TestDNS(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]
	c.addr6 = netip.MustParsePrefix("fd00:100::3/64")
	m.meshKeys, m.tail = dnsMeshKeys, dnsServices
	m.write(m.nodes)
	aIP, bIP, cIP := a.addr.Addr(), b.addr.Addr(), c.addr.Addr()

	// a forwards to an upstream in its namespace (its resolv.conf also
	// names a itself, which it must skip); b's resolv.conf names only b,
	// so b refuses outside names, and glibc in b's namespace asks b.
	startUpstream(t, a.host, a.host.Addr)
	netnsResolvConf(t, a.host, aIP, a.host.Addr)
	netnsResolvConf(t, b.host, bIP)
	m.startAll()
	ping(t, a, bIP)
	ping(t, a, cIP)

	for _, srv := range []struct {
		from, at *meshNode
	}{{b, a}, {b, b}} { // across the mesh, and b's own server
		h, at := srv.from.host, srv.at.addr.Addr()
		expectDig(t, h, at, "NOERROR", []string{"b.mesh.internal. A 10.100.0.2"}, "b.mesh.internal", "A")
		expectDig(t, h, at, "NOERROR", []string{"c.mesh.internal. AAAA fd00:100::3"}, "C.MESH.internal", "AAAA")
		expectDig(t, h, at, "NOERROR", []string{"postgres.mesh.internal. A 10.100.0.2", "postgres.mesh.internal. A 10.100.0.3"},
			"postgres.mesh.internal", "A")
		r := expectDig(t, h, at, "NOERROR", []string{
			"_postgres._tcp.mesh.internal. SRV 0 10 5432 b.mesh.internal.",
			"_postgres._tcp.mesh.internal. SRV 0 10 5432 c.mesh.internal.",
		}, "_postgres._tcp.mesh.internal", "SRV")
		if want := []string{"b.mesh.internal. A 10.100.0.2", "c.mesh.internal. A 10.100.0.3", "c.mesh.internal. AAAA fd00:100::3"}; !slices.Equal(r.additional, want) {
			t.Errorf("SRV additional: got %q, want %q", r.additional, want)
		}
		if !strings.Contains(r.flags, "aa") {
			t.Errorf("SRV flags %q: want aa", r.flags)
		}
		expectDig(t, h, at, "NOERROR", []string{"3.0.100.10.in-addr.arpa. PTR c.mesh.internal."}, "-x", cIP.String())
		for _, proto := range []string{"+notcp", "+tcp"} {
			soa := digAt(t, h, at, "mesh.internal", "SOA", proto)
			if len(soa.answer) != 1 || !strings.HasPrefix(soa.answer[0], "mesh.internal. SOA "+srv.at.name+".mesh.internal. hostmaster.mesh.internal.") {
				t.Errorf("SOA %s: got %q", proto, soa.answer)
			}
		}
		nx := expectDig(t, h, at, "NXDOMAIN", nil, "nosuch.mesh.internal", "A")
		nodata := expectDig(t, h, at, "NOERROR", nil, "a.mesh.internal", "TXT")
		for what, r := range map[string]digResult{"NXDOMAIN": nx, "NODATA": nodata} {
			if len(r.authority) != 1 || !strings.Contains(r.authority[0], " SOA ") {
				t.Errorf("%s: got authority %q, want the SOA", what, r.authority)
			}
		}
		expectDig(t, h, at, "NXDOMAIN", nil, "nosuch.mesh.internal", "A", "+tcp")
		expectDig(t, h, at, "NOERROR", []string{"web.mesh.internal. A 10.100.0.3"}, "web.mesh.internal", "A", "+tcp")
	}

	// glibc, through the namespace's resolv.conf.
	if out := string(b.host.MustExec(t, "getent", "hosts", "a.mesh.internal")); !containsAll(out, "10.100.0.1", "a.mesh.internal") {
		t.Errorf("getent hosts a.mesh.internal: got %q", out)
	}
	if out := string(b.host.MustExec(t, "getent", "ahosts", "c.mesh.internal")); !containsAll(out, "10.100.0.3", "fd00:100::3") {
		t.Errorf("getent ahosts c.mesh.internal: got %q, want its IPv4 and IPv6 addresses", out)
	}
	if out := string(b.host.MustExec(t, "getent", "ahostsv4", "postgres.mesh.internal")); !containsAll(out, "10.100.0.2", "10.100.0.3") {
		t.Errorf("getent ahostsv4 postgres.mesh.internal: got %q, want both instances", out)
	}
	serveHTTP(t, c.host, netip.AddrPortFrom(cIP, 8080), "hello from c")
	if out := string(b.host.MustExec(t, "curl", "-sS", "--max-time", "10", "http://web.mesh.internal:8080/")); out != "hello from c" {
		t.Errorf("curl by name across the mesh: got %q", out)
	}

	// Outside names: a forwards to the upstream its resolv.conf names; b
	// has none but itself and refuses.
	r := expectDig(t, b.host, aIP, "NOERROR", []string{"www.example.org. A " + outsideAddr}, "www.example.org", "A")
	if strings.Contains(r.flags, "aa") {
		t.Errorf("forwarded answer flags %q: want no aa", r.flags)
	}
	expectDig(t, b.host, bIP, "REFUSED", nil, "www.example.org", "A")

	st := status(t, a)
	if st.DNS == nil || st.DNS.Domain != "mesh.internal" || st.DNS.Services != 2 ||
		!slices.Equal(st.DNS.Addresses, []netip.AddrPort{netip.AddrPortFrom(aIP, 53)}) {
		t.Errorf("status dns: got %+v, want mesh.internal, 2 services, on %s:53", st.DNS, aIP)
	}
	if !strings.Contains(a.proc.Output(), "no systemd-resolved on this host") && !strings.Contains(a.proc.Output(), "registered with systemd-resolved") {
		t.Errorf("node a said nothing about the host's resolver:\n%s", a.proc.Output())
	}

	// A malformed service is rejected whole, with its line: the running
	// zone keeps answering.
	m.tail = strings.Replace(dnsServices, `name = "web"`, `name = "_web"`, 1)
	m.write(m.nodes)
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "reload failed")
	if bad := regexp.MustCompile(`mesh\.toml:\d+:\d+: .*service\.name.*is not a DNS label`); !bad.MatchString(a.proc.Output()) {
		t.Errorf("reload with a malformed service: no file:line:col error in the log:\n%s", a.proc.Output())
	}
	expectDig(t, b.host, aIP, "NOERROR", []string{"web.mesh.internal. A 10.100.0.3"}, "web.mesh.internal", "A")

	// Reload: a service added answers at once, a removed one is gone, and
	// one with 100 instances is truncated over UDP and whole over TCP.
	m.tail = strings.Replace(dnsServices, `name = "postgres"`, `name = "cache"`, 1) + bigService(t, 100)
	m.write(m.nodes)
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "mesh file reloaded")
	expectDig(t, b.host, aIP, "NOERROR", []string{"cache.mesh.internal. A 10.100.0.2", "cache.mesh.internal. A 10.100.0.3"}, "cache.mesh.internal", "A")
	expectDig(t, b.host, aIP, "NXDOMAIN", nil, "postgres.mesh.internal", "A")
	expectDig(t, b.host, aIP, "NXDOMAIN", nil, "_postgres._tcp.mesh.internal", "SRV")
	udp := digAt(t, b.host, aIP, "big.mesh.internal", "A", "+noedns", "+ignore")
	if !strings.Contains(udp.flags, "tc") || len(udp.answer) >= 100 {
		t.Errorf("100 instances over UDP: got flags %q and %d records, want tc and fewer than 100", udp.flags, len(udp.answer))
	}
	if tcp := digAt(t, b.host, aIP, "big.mesh.internal", "A", "+tcp"); len(tcp.answer) != 100 || strings.Contains(tcp.flags, "tc") {
		t.Errorf("100 instances over TCP: got flags %q and %d records, want 100", tcp.flags, len(tcp.answer))
	}
	// Without +ignore, dig itself falls back to TCP on TC, as resolvers do.
	if r := digAt(t, b.host, aIP, "big.mesh.internal", "A", "+noedns"); len(r.answer) != 100 {
		t.Errorf("100 instances, UDP with TCP fallback: got %d records, want 100", len(r.answer))
	}

	// Reload without a domain: a stops answering, and says so in status.
	m.meshKeys, m.tail = "", ""
	m.write(m.nodes)
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the second reload", func() bool { return strings.Count(a.proc.Output(), "mesh file reloaded") == 2 })
	if out, err := b.host.Exec(t.Context(), "dig", "@"+aIP.String(), "+time=1", "+tries=1", "a.mesh.internal"); err == nil {
		t.Errorf("dig after DNS was turned off: got an answer:\n%s", out)
	}
	if st := status(t, a); st.DNS != nil {
		t.Errorf("status dns after DNS was turned off: got %+v, want null", st.DNS)
	}
	// And on again.
	m.meshKeys, m.tail = dnsMeshKeys, dnsServices
	m.write(m.nodes)
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the third reload", func() bool { return strings.Count(a.proc.Output(), "mesh file reloaded") == 3 })
	expectDig(t, b.host, aIP, "NOERROR", []string{"a.mesh.internal. A 10.100.0.1"}, "a.mesh.internal", "A")
}

// An instance whose node stops answering leaves the service's answers
// once this node's handshakes with it have gone unanswered for 20 s, and
// comes back when the node does.
func TestDNSHealth(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]
	m.meshKeys, m.tail = dnsMeshKeys, dnsServices
	m.write(m.nodes)
	m.startAll()
	aIP := a.addr.Addr()
	ping(t, a, b.addr.Addr())
	ping(t, a, c.addr.Addr())
	both := []string{"postgres.mesh.internal. A 10.100.0.2", "postgres.mesh.internal. A 10.100.0.3"}
	expectDig(t, a.host, aIP, "NOERROR", both, "postgres.mesh.internal", "A")

	if err := b.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := b.proc.Wait(5 * time.Second); err == nstest.ErrRunning {
		t.Fatal("node b survived SIGKILL")
	}
	// Traffic to b goes unanswered: after 15 s the engine starts a new
	// handshake, and 20 s of unanswered handshakes later b is out.
	killed := time.Now()
	nstest.Ping(t, a.host, b.addr.Addr().String()) //nolint:errcheck // fails: b is down
	only := []string{"postgres.mesh.internal. A 10.100.0.3"}
	answer := func(want []string) func() bool {
		return func() bool {
			out, err := a.host.Exec(t.Context(), "dig", "@"+aIP.String(), "+short", "+time=1", "postgres.mesh.internal", "A")
			if err != nil {
				return false
			}
			var got []string
			for _, ip := range strings.Fields(string(out)) {
				got = append(got, "postgres.mesh.internal. A "+ip)
			}
			slices.Sort(got)
			return slices.Equal(got, want)
		}
	}
	waitUntil(t, 60*time.Second, "b to leave the answers", answer(only))
	t.Logf("b left the answers %v after it was killed", time.Since(killed).Round(time.Second))
	// The other instance's answers hold b's down: SRV too.
	r := digAt(t, a.host, aIP, "_postgres._tcp.mesh.internal", "SRV")
	if len(r.answer) != 1 || !strings.HasSuffix(r.answer[0], " c.mesh.internal.") {
		t.Errorf("SRV with b down: got %q, want c only", r.answer)
	}
	// A node's own name is answered whatever its health.
	expectDig(t, a.host, aIP, "NOERROR", []string{"b.mesh.internal. A 10.100.0.2"}, "b.mesh.internal", "A")

	m.start(b)
	restarted := time.Now()
	waitUntil(t, 30*time.Second, "b to come back", answer(both))
	t.Logf("b was back in the answers %v after it restarted", time.Since(restarted).Round(time.Second))
}
