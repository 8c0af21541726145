package main

import (
	"fmt"
	"testing"

	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/tunnel"
)

// Only a node without an endpoint follows its peers' host names, and only
// the names: an address never moves.
func TestFollowedPeers(t *testing.T) {
	keys := make([]crypto.PublicKey, 4)
	for i := range keys {
		k, err := crypto.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k.PublicKey()
	}
	node := func(name string, i int, endpoint string) string {
		s := fmt.Sprintf("[[node]]\nname = %q\npublic_key = %q\naddress = \"10.100.0.%d/24\"\n", name, keys[i], i+1)
		if endpoint != "" {
			s += fmt.Sprintf("endpoint = %q\n", endpoint)
		}
		return s
	}
	peers := node("byname", 1, "gw.example.net:51820") + node("byaddr", 2, "192.0.2.3:51820") + node("natted", 3, "")
	for _, tc := range []struct {
		selfEndpoint string
		want         []string
	}{
		{"", []string{"byname"}},
		{"192.0.2.1:51820", nil},
	} {
		mesh, err := config.Parse("test.toml", []byte("[mesh]\nname = \"t\"\nresolve_interval = \"7s\"\n"+node("self", 0, tc.selfEndpoint)+peers))
		if err != nil {
			t.Fatal(err)
		}
		self, err := mesh.Self(keys[0])
		if err != nil {
			t.Fatal(err)
		}
		plan := followedPeers(mesh, self, &tunnel.Config{})
		var got []string
		for _, fp := range plan.peers {
			got = append(got, fp.name)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || plan.interval.String() != "7s" {
			t.Errorf("self endpoint %q: got %v every %v, want %v every 7s", tc.selfEndpoint, got, plan.interval, tc.want)
		}
	}
}
