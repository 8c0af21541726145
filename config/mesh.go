package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/overlay-node/overlay-node/crypto"
)

// Defaults and limits of the mesh file.
const (
	DefaultPort  = 51820       // [mesh] port when the file has none
	MinMTU       = 1280        // the IPv6 minimum link MTU
	MaxMTU       = 65535       // the largest IP packet
	MinKeepalive = time.Second // WireGuard counts keepalive in whole seconds
	MaxKeepalive = 65535 * time.Second

	DefaultResolveInterval = time.Minute // [mesh] resolve_interval when the file has none
	MinResolveInterval     = time.Second
)

// Mesh is a decoded mesh file: the settings shared by the whole mesh and
// every node in it. A Mesh returned by Parse or Load is valid; one built or
// changed in code should be checked with Validate.
type Mesh struct {
	Path  string // the file it was read from
	Name  string // [mesh] name: a DNS label shown in status and metrics
	Port  uint16 // [mesh] port: the default UDP listen port of every node
	MTU   int    // [mesh] mtu: the TUN MTU
	Nodes []Node // every [[node]], in file order

	// ResolveInterval is how often a node re-resolves the host names of
	// the endpoints it follows (see the node's resolver).
	ResolveInterval time.Duration // [mesh] resolve_interval

	// Service discovery (dns.go). An empty Domain turns DNS off.
	Domain      string           // [mesh] domain: lower case, without the trailing dot
	DNSUpstream []netip.AddrPort // [mesh] dns_upstream; nil when absent (use the host's resolv.conf), empty when [] (refuse outside names)
	Services    []Service        // every [[service]], in file order

	Hash string // hex SHA-256 of the file's bytes, to tell whether a reload changed anything

	// Segmentation. With no Allow rules every flow between members passes.
	Deny         string   // [mesh] deny: what a denied packet gets, "reject" or "drop"; "" means "reject"
	ConntrackMax int      // [mesh] conntrack_max: flows tracked at most; zero means the default
	Allow        []Allow  // every [[allow]], in file order
	Expect       []Expect // every [[expect]], in file order

	src *source // where each key was written; nil for a Mesh built in code
}

// Node is one [[node]] of the mesh: a host running overlay-node or a stock
// WireGuard peer.
type Node struct {
	Name      string           // unique DNS label
	PublicKey crypto.PublicKey // identifies the node; the daemon finds itself by it
	Addresses []netip.Prefix   // overlay addresses with the overlay prefix length, e.g. 10.100.0.1/24
	Endpoint  string           // host:port where peers reach it; empty behind NAT
	Subnets   []netip.Prefix   // networks behind the node, in canonical (masked) form
	// Containers are the networks the node hands to its containers, at
	// most one IPv4 and one IPv6, canonical. Routed like Subnets.
	Containers []netip.Prefix
	Keepalive  time.Duration // persistent keepalive interval; zero means off
	Port       uint16        // UDP listen port; the mesh port unless the node sets its own
	Groups     []string      // groups the node's addresses and subnets belong to, for [[allow]] rules
	Line       int           // line of the node's [[node]] header; zero for a Node built in code

	src *source
}

// source remembers where the keys of one table were written, so that
// Validate can point at them.
type source struct {
	header position // the table's header, or where a missing key would go
	fields map[string]*field
	bad    map[string]bool // keys whose value could not be decoded: already reported
}

// field is where the value of one key was written.
type field struct {
	val   position
	elems []position // for lists: where each decoded element is
}

func newSource(header position) *source {
	return &source{header: header, fields: make(map[string]*field), bad: make(map[string]bool)}
}

// has reports whether the table set key.
func (s *source) has(key string) bool {
	if s == nil {
		return false
	}
	_, ok := s.fields[key]
	return ok
}

// isBad reports whether key's value was already reported as undecodable.
func (s *source) isBad(key string) bool {
	return s != nil && s.bad[key]
}

// pos returns the position of key's value, or of its element elem when elem
// is not negative. A missing key is placed at the table's header.
func (s *source) pos(key string, elem int) position {
	if s == nil {
		return position{}
	}
	f, ok := s.fields[key]
	if !ok {
		return s.header
	}
	if elem >= 0 && elem < len(f.elems) {
		return f.elems[elem]
	}
	return f.val
}

// Load reads, decodes and validates the mesh file at path. A file that does
// not exist yields an error matching ErrNoConfig (and fs.ErrNotExist); an
// invalid one yields an ErrorList with every problem.
func Load(path string) (*Mesh, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &noConfigError{path: path, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("read mesh file: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a mesh file. path names the file in error
// messages. The error, if any, is an ErrorList with every problem found: a
// TOML syntax error on its own (decoding stops there), or all schema and
// validation errors together.
func Parse(path string, data []byte) (*Mesh, error) {
	sum := sha256.Sum256(data)
	// Some editors start UTF-8 files with a byte order mark, which TOML
	// does not allow. It is invisible, so columns are counted without it.
	doc := bytes.TrimPrefix(data, []byte("\ufeff"))
	var probe map[string]any
	if err := toml.Unmarshal(doc, &probe); err != nil {
		return nil, ErrorList{syntaxError(path, err)}
	}
	root, err := parseTree(doc)
	if err != nil {
		return nil, ErrorList{syntaxError(path, err)}
	}
	d := &decoder{file: path}
	m := d.decode(root)
	m.Path = path
	m.Hash = hex.EncodeToString(sum[:])
	errs := append(d.errs, m.validate(len(d.errs) == 0)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// Self returns the node whose public key is pub: the node this daemon runs
// as. It returns an error matching ErrNotInMesh when there is none.
func (m *Mesh) Self(pub crypto.PublicKey) (*Node, error) {
	for i := range m.Nodes {
		if m.Nodes[i].PublicKey.Equal(pub) {
			return &m.Nodes[i], nil
		}
	}
	return nil, fmt.Errorf("%w: no [[node]] in %s has public_key %s (hint: add a node with this key, or pass the key of a node that is listed)",
		ErrNotInMesh, m.Path, pub)
}

// AllowedIPs returns the prefixes whose packets belong to n: its addresses as
// host routes, then its subnets and container networks. These are the
// peer's WireGuard allowed IPs, and what its groups stand for.
func (n *Node) AllowedIPs() []netip.Prefix {
	ips := make([]netip.Prefix, 0, len(n.Addresses)+len(n.Subnets)+len(n.Containers))
	for _, a := range n.Addresses {
		ips = append(ips, netip.PrefixFrom(a.Addr(), a.Addr().BitLen()))
	}
	ips = append(ips, n.Subnets...)
	return append(ips, n.Containers...)
}

// RoutedPrefixes returns the networks behind n that other nodes route
// through the interface to it: its subnets and container networks.
func (n *Node) RoutedPrefixes() []netip.Prefix {
	return append(append([]netip.Prefix{}, n.Subnets...), n.Containers...)
}

// OverlayPrefixes returns the networks the nodes' addresses imply (each
// address masked to its prefix length), without duplicates, in the order
// they first appear. These are routed through the interface.
func (m *Mesh) OverlayPrefixes() []netip.Prefix {
	var out []netip.Prefix
	seen := make(map[netip.Prefix]bool)
	for _, n := range m.Nodes {
		for _, a := range n.Addresses {
			p := a.Masked()
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}
