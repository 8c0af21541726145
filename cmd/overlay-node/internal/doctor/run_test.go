package doctor

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/config"
)

const policyMesh = `[mesh]
name = "seg"

[[node]]
name = "web"
public_key = "9txyRk6TlzwW5H2Q9zwswo8jzRf/x67DLZju+eIhTkw="
address = "10.100.0.1/24"
groups = ["web"]

[[node]]
name = "db"
public_key = "hx8ate0U8fOMdRpsWKurM48cCuPUzpWSM1Gh2lwFaxI="
address = "10.100.0.2/24"
groups = ["db"]

[[allow]]
name = "web-to-db"
from = ["group:web"]
to = ["group:db"]
ports = ["5432/tcp", "443/tcp", "icmp"]
`

// With [[allow]] rules, the policy line lists what they let through to
// and from the peer, and a ping the rules deny is a warning, not a fail.
func TestPeerPolicyLine(t *testing.T) {
	mesh, err := config.Parse("mesh.toml", []byte(policyMesh))
	if err != nil {
		t.Fatal(err)
	}
	st := &control.Status{Addresses: []netip.Prefix{netip.MustParsePrefix("10.100.0.1/24")}}
	db := netip.MustParseAddr("10.100.0.2")
	r := &Report{}
	c := peerCheck{r: r, st: st, p: control.Peer{Name: "db"}, mesh: mesh, pol: mesh.Policy(), ping: pingResult{target: db, err: ErrNoReply}}
	c.policy()
	c.pingLine()
	got := r.Find("peer db: policy")
	if got == nil || got.Level != OK {
		t.Fatalf("no ok policy line: %+v", r.Checks)
	}
	for _, want := range []string{"to db: allow [icmp 443/tcp], deny [22/tcp 53/udp 80/tcp]", "from db: allow [], deny [icmp 22/tcp 53/udp 80/tcp 443/tcp]"} {
		if !strings.Contains(got.Saw, want) {
			t.Errorf("policy line: got %q, want it to say %q", got.Saw, want)
		}
	}
	// The rules allow web's ping to db (the reply is part of the flow):
	// no reply is a failure.
	if p := r.Find("peer db: ping"); p == nil || p.Level != Fail {
		t.Errorf("web's ping line: got %+v, want a fail", p)
	}

	// From db, a ping to web is denied: no reply is what the rules say.
	r = &Report{}
	st = &control.Status{Addresses: []netip.Prefix{netip.MustParsePrefix("10.100.0.2/24")}}
	c = peerCheck{r: r, st: st, p: control.Peer{Name: "web"}, mesh: mesh, pol: mesh.Policy(),
		ping: pingResult{target: netip.MustParseAddr("10.100.0.1"), err: ErrNoReply}}
	c.pingLine()
	if p := r.Find("peer web: ping"); p == nil || p.Level != Warn || !strings.Contains(p.Saw, "deny ICMP") {
		t.Errorf("db's ping line: got %+v, want a warning that the rules deny ICMP", p)
	}
}
