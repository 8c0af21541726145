package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
)

func TestHandshakeAge(t *testing.T) {
	sec := func(n int64) *int64 { return &n }
	for _, tt := range []struct {
		in   *int64
		want string
	}{
		{nil, "never"},
		{sec(0), "0s ago"},
		{sec(12), "12s ago"},
		{sec(59), "59s ago"},
		{sec(60), "1m 0s ago"},
		{sec(185), "3m 5s ago"},
		{sec(3600), "1h 0m ago"},
		{sec(2*3600 + 5*60 + 9), "2h 5m ago"},
		{sec(3*86400 + 4*3600), "3d 4h ago"},
	} {
		if got := handshakeAge(tt.in); got != tt.want {
			t.Errorf("handshakeAge(%v): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tt := range []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{5 << 20, "5.0 MiB"},
		{3 << 30, "3.0 GiB"},
		{1 << 62, "4.0 EiB"},
	} {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func testStatus() *control.Status {
	age := int64(12)
	drops := func(kv ...any) map[string]uint64 {
		m := map[string]uint64{"no_route": 0, "malformed": 0, "decrypt_failed": 0}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = uint64(kv[i+1].(int))
		}
		return m
	}
	return &control.Status{
		Schema: control.SchemaVersion, Mesh: "demo", Node: "gateway-eu", Interface: "ovl0", ListenPort: 51820,
		PublicKey: "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
		Peers: []control.Peer{
			{
				Name: "db-primary-1", Endpoint: netip.MustParseAddrPort("203.0.113.200:51820"),
				LatestHandshakeAge: &age, RxBytes: 1288490188, TxBytes: 3 << 20,
				Drops: drops("decrypt_failed", 2),
			},
			{Name: "laptop", Drops: drops()},
		},
		Drops: drops("malformed", 1000, "decrypt_failed", 2, "no_route", 2),
		DNS: &control.DNS{Domain: "mesh.internal", Services: 2, Addresses: []netip.AddrPort{
			netip.MustParseAddrPort("10.100.0.1:53"), netip.MustParseAddrPort("[fd00:100::1]:53")}},
	}
}

func TestWriteStatus(t *testing.T) {
	var b strings.Builder
	if err := writeStatus(&b, testStatus()); err != nil {
		t.Fatal(err)
	}
	want := `mesh demo, node gateway-eu, interface ovl0, port 51820
public key: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
dns: mesh.internal, 2 service(s), on 10.100.0.1:53 [fd00:100::1]:53

PEER          ENDPOINT             HANDSHAKE  RX       TX       DROPS
db-primary-1  203.0.113.200:51820  12s ago    1.2 GiB  3.0 MiB  2
laptop        (none)               never      0 B      0 B      0

DROP REASON     COUNT
malformed        1000
decrypt_failed      2
no_route            2
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if len(line) > 80 {
			t.Errorf("line wider than 80 columns (%d): %q", len(line), line)
		}
	}
}

// A node whose mesh comes from etcd says which revision, since when.
func TestWriteStatusEtcd(t *testing.T) {
	st := &control.Status{Mesh: "demo", Node: "a", Interface: "ovl0", MeshSource: "etcd", MeshRevision: 42,
		ConfigLoaded: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), MeshWatchReconnects: 1}
	var b strings.Builder
	writeStatus(&b, st)
	if want := "mesh from etcd: revision 42, applied 2026-01-02T03:04:05Z, watch reconnects 1\n"; !strings.Contains(b.String(), want) {
		t.Errorf("got:\n%s\nwant the line %q", b.String(), want)
	}
}

func TestWriteStatusFirewall(t *testing.T) {
	st := testStatus()
	st.Firewall = control.Firewall{Enabled: true, Deny: "reject", PolicyHash: "5b0f8e6e2c1d54d3f0a5",
		Rules:            []control.Rule{{Name: "web-to-db", Pos: "mesh.toml:40", Flows: 12}, {Name: "allow-2", Pos: "mesh.toml:46"}},
		ConntrackEntries: 3, ConntrackEvictions: 1, DeniedIn: 2, DeniedOut: 5}
	var b strings.Builder
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	want := `
firewall: 2 rule(s), deny reject, policy 5b0f8e6e2c1d; denied 2 in, 5 out
conntrack: 3 flows, 1 evicted, 0 cut by reloads

RULE       WHERE         FLOWS
web-to-db  mesh.toml:40  12
allow-2    mesh.toml:46  0
`
	if got := b.String(); !strings.HasSuffix(got, want) {
		t.Errorf("got:\n%s\nwant it to end with:\n%s", got, want)
	}
}

func TestWriteStatusQuiet(t *testing.T) {
	st := &control.Status{Mesh: "demo", Node: "a", Interface: "ovl0", Drops: map[string]uint64{"malformed": 0}}
	var b strings.Builder
	writeStatus(&b, st)
	if got := b.String(); !strings.Contains(got, "no peers\n") || !strings.Contains(got, "drops: none\n") || strings.Contains(got, "dns:") {
		t.Errorf("got:\n%s\nwant \"no peers\", \"drops: none\" and no dns line", got)
	}
}

// With no daemon on the interface, status says so and exits 1.
func TestStatusNotRunning(t *testing.T) {
	code, _, stderr := runCLI(t, "", "status", "--interface", "nosuchif0")
	if code != exitError {
		t.Errorf("exit code: got %d, want %d", code, exitError)
	}
	if !strings.Contains(stderr, "nosuchif0") || !strings.Contains(stderr, "no overlay-node is running") {
		t.Errorf("stderr: got %q, want it to name the interface and say nothing runs there", stderr)
	}
	if code, _, _ := runCLI(t, "", "status", "extra"); code != exitUsage {
		t.Errorf("stray argument: exit code %d, want %d", code, exitUsage)
	}
}
