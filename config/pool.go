package config

import (
	"fmt"
	"net/netip"

	"github.com/overlay-node/overlay-node/internal/netaddr"
)

// poolHint says how [mesh] pool is written.
const poolHint = `write the network joining nodes take their addresses from, e.g. pool = "10.100.1.0/24"; it must hold at least two addresses`

// The pool is where nodes that join a mesh kept in etcd (overlay-node up
// --join) take their overlay addresses from. A pushed mesh may list no
// nodes at all when it has a pool: every node may join.

// pool decodes [mesh] pool.
func (d *decoder) pool(m *Mesh, v *value) {
	s, ok := d.str(m.src, "mesh", "pool", v)
	if !ok {
		return
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		m.src.bad["pool"] = true
		d.add(v.at, "mesh.pool", fmt.Sprintf("%q is not a network", s), poolHint)
		return
	}
	m.Pool = p
}

// pool checks the pool: a masked network with room for joined
// nodes.
func (v *validator) pool() {
	p, src := v.m.Pool, v.m.src
	if !p.IsValid() {
		return
	}
	switch {
	case p != p.Masked():
		v.add(src, "mesh", "pool", -1, fmt.Sprintf("%s has host bits set", p), fmt.Sprintf("write the network itself: %q", p.Masked().String()))
	case p.Addr().BitLen()-p.Bits() < 2:
		v.add(src, "mesh", "pool", -1, fmt.Sprintf("%s has no room for joining nodes", p), poolHint)
	}
}

// PoolAddresses calls yield with each address of the pool a joining node
// may take, lowest first, with the pool's prefix length, until yield
// returns false. It skips the network's own address and, for IPv4, its
// broadcast address.
func (m *Mesh) PoolAddresses(yield func(netip.Prefix) bool) {
	p := m.Pool
	if !p.IsValid() {
		return
	}
	last := netaddr.Last(p)
	for a := p.Addr().Next(); a.IsValid() && p.Contains(a); a = a.Next() {
		if a.Is4() && a == last {
			return
		}
		if !yield(netip.PrefixFrom(a, p.Bits())) {
			return
		}
	}
}
