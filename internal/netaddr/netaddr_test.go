package netaddr

import (
	"net/netip"
	"testing"
)

func TestLast(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"10.0.0.0/24", "10.0.0.255"},
		{"10.0.0.7/24", "10.0.0.255"},
		{"172.20.1.0/30", "172.20.1.3"},
		{"10.1.2.3/32", "10.1.2.3"},
		{"0.0.0.0/0", "255.255.255.255"},
		{"fd00:20:1::/64", "fd00:20:1::ffff:ffff:ffff:ffff"},
		{"fd00::1/128", "fd00::1"},
	} {
		if got := Last(netip.MustParsePrefix(tc.prefix)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("Last(%s): got %s, want %s", tc.prefix, got, tc.want)
		}
	}
}
