package config

import (
	"strconv"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// The shape of the mesh file, for encoding.
type (
	fileMesh struct {
		Mesh    fileMeshTable `toml:"mesh"`
		Node    []fileNode    `toml:"node"`
		Service []fileService `toml:"service,omitempty"`
	}
	fileMeshTable struct {
		Name        string    `toml:"name"`
		Port        uint16    `toml:"port"`
		MTU         int       `toml:"mtu"`
		Domain      string    `toml:"domain,omitempty"`
		DNSUpstream *[]string `toml:"dns_upstream,omitempty"` // nil when absent; [] is written
	}
	fileNode struct {
		Name      string   `toml:"name"`
		PublicKey string   `toml:"public_key"`
		Address   any      `toml:"address"` // a string, or a list for more than one
		Endpoint  string   `toml:"endpoint,omitempty"`
		Subnets   []string `toml:"subnets,omitempty"`
		Keepalive string   `toml:"keepalive,omitempty"`
		Port      uint16   `toml:"port,omitempty"` // left out when it is the mesh port
	}
)

// Marshal encodes m as a mesh file. Parse decodes the result back to the same
// mesh (apart from Path, Hash and line numbers). Comments and the layout of
// the original file are not kept.
func (m *Mesh) Marshal() ([]byte, error) {
	f := fileMesh{Mesh: fileMeshTable{Name: m.Name, Port: m.Port, MTU: m.MTU}}
	marshalDNS(m, &f)
	for _, n := range m.Nodes {
		fn := fileNode{
			Name:      n.Name,
			PublicKey: n.PublicKey.String(),
			Endpoint:  n.Endpoint,
		}
		addrs := make([]string, len(n.Addresses))
		for i, a := range n.Addresses {
			addrs[i] = a.String()
		}
		fn.Address = addrs
		if len(addrs) == 1 {
			fn.Address = addrs[0]
		}
		for _, s := range n.Subnets {
			fn.Subnets = append(fn.Subnets, s.String())
		}
		switch {
		case n.Keepalive%time.Second == 0 && n.Keepalive != 0:
			fn.Keepalive = strconv.FormatInt(int64(n.Keepalive/time.Second), 10) + "s" // as WireGuard counts it
		case n.Keepalive != 0:
			fn.Keepalive = n.Keepalive.String()
		}
		if n.Port != m.Port {
			fn.Port = n.Port
		}
		f.Node = append(f.Node, fn)
	}
	return toml.Marshal(f)
}
