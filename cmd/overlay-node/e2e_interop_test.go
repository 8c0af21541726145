package main

import (
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// startStockPeer runs node n of the mesh as a real wireguard-go process,
// configured over its UAPI socket from the same keys and addresses the mesh
// file gives: nothing in the mesh needs overlay-node on that side.
func startStockPeer(t *testing.T, m *testMesh, n *meshNode) {
	t.Helper()
	w := nstest.StartWireGuardGo(t, n.host, nstest.UniqueIfName("wg"))
	port := 51820
	cfg := wgtypes.Config{PrivateKey: (*wgtypes.Key)(&n.key), ListenPort: &port, ReplacePeers: true}
	for _, o := range m.nodes {
		if o == n {
			continue
		}
		var allowed []net.IPNet
		own := []netip.Prefix{netip.PrefixFrom(o.addr.Addr(), 32)}
		if o.addr6.IsValid() {
			own = append(own, netip.PrefixFrom(o.addr6.Addr(), 128))
		}
		for _, p := range append(own, o.subnets...) {
			allowed = append(allowed, net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
		}
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{
			PublicKey:         wgtypes.Key(o.key.PublicKey()),
			Endpoint:          &net.UDPAddr{IP: o.host.Addr.AsSlice(), Port: 51820},
			AllowedIPs:        allowed,
			ReplaceAllowedIPs: true,
		})
	}
	if err := w.Configure(cfg); err != nil {
		t.Fatal(err)
	}
	w.AddAddr(t, n.addr.String())
	if n.addr6.IsValid() {
		w.AddAddr(t, n.addr6.String())
	}
}

// A real wireguard-go process is node b of the mesh. Either side may
// start the handshake; pings and byte-exact transfers go both ways.
func TestInteropWithWireGuardGoProcess(t *testing.T) {
	for _, tc := range []struct {
		name       string
		weInitiate bool
	}{{"wireguard-go initiates", false}, {"overlay-node initiates", true}} {
		t.Run(tc.name, func(t *testing.T) {
			lan := nstest.NewLAN(t, 2)
			m := newTestMesh(t, lan.Hosts, nil)
			a, b := m.nodes[0], m.nodes[1]
			m.start(a)
			startStockPeer(t, m, b)
			if tc.weInitiate {
				ping(t, a, b.addr.Addr())
			} else {
				ping(t, b, a.addr.Addr())
			}
			transfer(t, a.host, b.host, b.addr.Addr(), 8<<20)
			transfer(t, b.host, a.host, a.addr.Addr(), 8<<20)
		})
	}
}
