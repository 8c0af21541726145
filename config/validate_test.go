package config

import (
	"crypto/ecdh"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/overlay-node/overlay-node/encap"
)

// TestSubnetChecksReference compares the sorted subnet checks of Validate
// with a slow pairwise reference on random meshes.
func TestSubnetChecksReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keyRNG := rand.NewChaCha8([32]byte{1})
	randPrefix := func() netip.Prefix {
		if rng.IntN(4) == 0 {
			a := netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(rng.IntN(256))})
			p, _ := a.Prefix(120 + rng.IntN(9))
			return p
		}
		a := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(rng.IntN(256))})
		p, _ := a.Prefix(20 + rng.IntN(13))
		return p
	}
	totals := map[string]int{} // so that the test shows it exercised every check
	for iter := range 300 {
		m := &Mesh{Name: "ref", Port: DefaultPort, MTU: encap.DefaultMTU}
		for i := range 2 + rng.IntN(6) {
			k, err := ecdh.X25519().GenerateKey(keyRNG)
			if err != nil {
				t.Fatal(err)
			}
			n := Node{Name: string(rune('a' + i)), Port: DefaultPort}
			copy(n.PublicKey[:], k.PublicKey().Bytes())
			// Addresses are /32s so that none is a network address.
			a := netip.AddrFrom4([4]byte{10, 0, byte(rng.IntN(4)), byte(i*37 + 1)})
			n.Addresses = []netip.Prefix{netip.PrefixFrom(a, 32)}
			for range rng.IntN(4) {
				n.Subnets = append(n.Subnets, randPrefix())
			}
			m.Nodes = append(m.Nodes, n)
		}

		// The reference, pairwise.
		want := map[string]int{}
		for i, n := range m.Nodes {
			for j, s := range n.Subnets {
				if s != s.Masked() {
					want["host bits"]++
					continue
				}
				for k, o := range m.Nodes {
					for l, os := range o.Subnets {
						if os != os.Masked() || !s.Overlaps(os) || (k == i && l == j) {
							continue
						}
						later := i > k || i == k && j > l
						switch {
						case later && k != i:
							want["overlaps"]++
						case later && s == os:
							want["listed twice"]++
						}
					}
				}
				for k, o := range m.Nodes {
					if k != i && s.Contains(o.Addresses[0].Addr()) {
						want["contains"]++
						break
					}
				}
			}
		}

		totals["overlaps"] += want["overlaps"]
		totals["contains"] += want["contains"]
		totals["listed twice"] += want["listed twice"]
		got := map[string]int{}
		if err := m.Validate(); err != nil {
			for _, e := range errorList(t, err) {
				if e.Key != "node.subnets" {
					t.Fatalf("iteration %d: unexpected error %v", iter, e)
				}
				for _, kind := range []string{"host bits", "overlaps", "listed twice", "contains"} {
					if strings.Contains(e.Msg, kind) {
						got[kind]++
					}
				}
			}
		}
		for _, kind := range []string{"host bits", "overlaps", "listed twice", "contains"} {
			if got[kind] != want[kind] {
				t.Fatalf("iteration %d: got %d %q errors, want %d\n%+v\n%v", iter, got[kind], kind, want[kind], m.Nodes, m.Validate())
			}
		}
	}
	for _, kind := range []string{"overlaps", "listed twice", "contains"} {
		if totals[kind] == 0 {
			t.Errorf("no random mesh had a %q error; the test needs other parameters", kind)
		}
	}
}

func TestEndpointProblem(t *testing.T) {
	tests := []struct {
		in, norm string
		ok       bool
	}{
		{"192.0.2.1:51820", "192.0.2.1:51820", true},
		{"[::ffff:192.0.2.1]:51820", "192.0.2.1:51820", true},
		{"[2001:DB8::1]:51820", "[2001:db8::1]:51820", true},
		{"[fe80::1%eth0]:51820", "[fe80::1%eth0]:51820", true},
		{"GW.Example.NET.:051820", "gw.example.net:51820", true},
		{"a-b.c:1", "a-b.c:1", true},
		{"localhost:65535", "localhost:65535", true},
		{"-a.b:1", "", false},
		{"a..b:1", "", false},
		{"1.2.3:1", "", false},
		{"[192.0.2.1]:1", "", false},
		{"[::1:1", "", false},
		{strings.Repeat("a", 64) + ".net:1", "", false},
		{"0.0.0.0:1", "", false},
		{"[::]:1", "", false},
	}
	for _, tt := range tests {
		norm, msg, hint := endpointProblem(tt.in)
		if ok := msg == ""; ok != tt.ok || norm != tt.norm {
			t.Errorf("%q: got %q, %q, want normal form %q and ok %v", tt.in, norm, msg, tt.norm, tt.ok)
		}
		if msg != "" && hint == "" {
			t.Errorf("%q: got no hint", tt.in)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"adress", "address"},
		{"addresses", "address"},
		{"publickey", "public_key"},
		{"PublicKey", "public_key"},
		{"public-key", "public_key"},
		{"Endpoint", "endpoint"},
		{"AllowedIPs", "subnets"},
		{"subnet", "subnets"},
		{"ListenPort", "port"},
		{"keepalive_interval", ""},
		{"group", "groups"},
		{"tags", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, nodeKeys); got != tt.want {
			t.Errorf("suggest(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
