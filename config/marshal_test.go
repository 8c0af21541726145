package config

import (
	"strconv"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// The shape of the mesh file, for encoding it in tests.
type (
	fileMesh struct {
		Mesh    fileMeshTable `toml:"mesh"`
		Node    []fileNode    `toml:"node"`
		Allow   []fileAllow   `toml:"allow,omitempty"`
		Expect  []fileExpect  `toml:"expect,omitempty"`
		Service []fileService `toml:"service,omitempty"`
	}
	fileMeshTable struct {
		Name         string    `toml:"name"`
		Port         uint16    `toml:"port"`
		MTU          int       `toml:"mtu"`
		Deny         string    `toml:"deny,omitempty"`
		ConntrackMax int       `toml:"conntrack_max,omitempty"`
		Domain       string    `toml:"domain,omitempty"`
		DNSUpstream  *[]string `toml:"dns_upstream,omitempty"` // nil when absent; [] is written
	}
	fileAllow struct {
		Name  string   `toml:"name"`
		From  []string `toml:"from"`
		To    []string `toml:"to"`
		Ports []string `toml:"ports,omitempty"`
	}
	fileExpect struct {
		From    string `toml:"from"`
		To      string `toml:"to"`
		Port    string `toml:"port"`
		Verdict string `toml:"verdict"`
	}
	fileNode struct {
		Name       string   `toml:"name"`
		PublicKey  string   `toml:"public_key"`
		Address    any      `toml:"address"` // a string, or a list for more than one
		Endpoint   string   `toml:"endpoint,omitempty"`
		Subnets    []string `toml:"subnets,omitempty"`
		Containers []string `toml:"containers,omitempty"`
		Keepalive  string   `toml:"keepalive,omitempty"`
		Port       uint16   `toml:"port,omitempty"` // left out when it is the mesh port
		Groups     []string `toml:"groups,omitempty"`
	}
)

// marshal encodes m as a mesh file, for round-trip tests: Parse decodes the
// result back to the same mesh (apart from Path, Hash and line numbers).
func marshal(m *Mesh) ([]byte, error) {
	f := fileMesh{Mesh: fileMeshTable{Name: m.Name, Port: m.Port, MTU: m.MTU, Deny: m.Deny, ConntrackMax: m.ConntrackMax}}
	marshalDNS(m, &f)
	for _, n := range m.Nodes {
		fn := fileNode{
			Name:      n.Name,
			PublicKey: n.PublicKey.String(),
			Endpoint:  n.Endpoint,
			Groups:    n.Groups,
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
		for _, s := range n.Containers {
			fn.Containers = append(fn.Containers, s.String())
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
	for _, a := range m.Allow {
		fa := fileAllow{Name: a.Name, From: selectorStrings(a.From), To: selectorStrings(a.To)}
		for _, p := range a.Ports {
			fa.Ports = append(fa.Ports, p.String())
		}
		f.Allow = append(f.Allow, fa)
	}
	for _, x := range m.Expect {
		f.Expect = append(f.Expect, fileExpect{From: x.From.String(), To: x.To.String(), Port: x.Port.String(), Verdict: verdictWord(x.Allow)})
	}
	return toml.Marshal(f)
}

func selectorStrings(sels []Selector) []string {
	out := make([]string, len(sels))
	for i, s := range sels {
		out[i] = s.String()
	}
	return out
}

// marshalDNS adds the DNS settings and the services of m to f.
func marshalDNS(m *Mesh, f *fileMesh) {
	f.Mesh.Domain = m.Domain
	if m.DNSUpstream != nil {
		ups := make([]string, len(m.DNSUpstream))
		for i, u := range m.DNSUpstream {
			ups[i] = u.String()
		}
		f.Mesh.DNSUpstream = &ups
	}
	for _, s := range m.Services {
		f.Service = append(f.Service, fileService{Name: s.Name, Nodes: s.Nodes, Port: s.Port, Protocol: s.Protocol})
	}
}

// fileService is the shape of a [[service]] table, for encoding.
type fileService struct {
	Name     string   `toml:"name"`
	Nodes    []string `toml:"nodes"`
	Port     uint16   `toml:"port"`
	Protocol string   `toml:"protocol"`
}
