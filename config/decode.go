package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
)

// The keys each table accepts, in the order hints list them.
var (
	topKeys  = []string{"mesh", "node", "allow", "expect", "service"}
	meshKeys = []string{"name", "port", "mtu", "deny", "conntrack_max", "domain", "dns_upstream", "resolve_interval"}
	nodeKeys = []string{"name", "public_key", "address", "endpoint", "subnets", "containers", "keepalive", "port", "groups"}
)

// topTables names the top-level tables, as hints list them.
const topTables = "[mesh], [[node]], [[allow]], [[expect]] and [[service]]"

// examples show how each key is written, for the hints of type errors.
var examples = map[string]string{
	"mesh.name":             `name = "prod"`,
	"mesh.port":             `port = 51820`,
	"mesh.mtu":              fmt.Sprintf("mtu = %d", encap.DefaultMTU),
	"mesh.resolve_interval": `resolve_interval = "60s"`,
	"node.name":             `name = "web-1"`,
	"node.public_key":       `public_key = "<the output of overlay-node pubkey>"`,
	"node.address":          `address = "10.100.0.1/24", or address = ["10.100.0.1/24", "fd00:100::1/64"] for dual stack`,
	"node.endpoint":         `endpoint = "203.0.113.10:51820"`,
	"node.subnets":          `subnets = ["192.168.60.0/24"]`,
	"node.keepalive":        `keepalive = "25s"`,
	"node.port":             `port = 51820`,
}

// Hints shared by decoding and validation.
const (
	keyHint     = "paste the output of overlay-node pubkey (or wg pubkey) for the node's private key: 44 base64 characters"
	portHint    = "use a UDP port from 1 to 65535; the default is 51820"
	addressHint = `write the overlay address with the overlay network's prefix length, e.g. "10.100.0.1/24" or "fd00:100::1/64"`
)

// decoder maps the TOML tree onto a Mesh, collecting every problem.
type decoder struct {
	file string
	errs ErrorList
}

func (d *decoder) add(at position, key, msg, hint string) {
	d.errs = append(d.errs, &Error{File: d.file, Line: at.Line, Col: at.Col, Key: key, Msg: msg, Hint: hint})
}

// syntaxError converts an error from go-toml into an Error at its position.
func syntaxError(file string, err error) *Error {
	e := &Error{
		File: file, Line: 1, Col: 1,
		Msg:  "invalid TOML: " + strings.TrimPrefix(err.Error(), "toml: "),
		Hint: "fix the TOML syntax here: strings need double quotes, each key = value goes on its own line, tables start with [mesh] or [[node]]",
	}
	if msg := e.Msg; strings.Contains(msg, "already defined") || strings.Contains(msg, "already exists") {
		e.Hint = "a key or table may appear only once (only [[node]] repeats): remove or merge the duplicate"
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		e.Line, e.Col = de.Position()
		e.Key = strings.Join(de.Key(), ".")
	}
	if e.Line < 1 {
		e.Line = 1
	}
	if e.Col < 1 {
		e.Col = 1
	}
	return e
}

func (d *decoder) decode(root *value) *Mesh {
	m := &Mesh{Port: DefaultPort, MTU: encap.DefaultMTU, Deny: DefaultDeny, ConntrackMax: DefaultConntrackMax, ResolveInterval: DefaultResolveInterval, src: newSource(position{1, 1})}
	t := root.table
	for _, k := range t.keys {
		v := t.vals[k]
		switch k {
		case "mesh":
			d.meshTable(m, v)
		case "node":
			m.src.fields[k] = &field{val: v.at}
			d.nodes(m, v)
		case "allow":
			d.allows(m, v)
		case "expect":
			d.expects(m, v)
		case "service":
			d.services(m, v)
		default:
			if d.unknown(v, "", k, topKeys) == "node" && !m.src.has("node") {
				m.src.bad["node"] = true
			}
		}
	}
	// The mesh port may come after the nodes in the file.
	for i := range m.Nodes {
		if !m.Nodes[i].src.has("port") {
			m.Nodes[i].Port = m.Port
		}
	}
	return m
}

func (d *decoder) meshTable(m *Mesh, v *value) {
	if v.kind != kindTable {
		d.add(v.key, "mesh", "must be a table, not "+v.kind.describe(), `write [mesh] on its own line, with name = "prod" under it`)
		m.src.bad["name"] = true
		return
	}
	m.src.header = v.at
	var sug []string
	for _, k := range v.table.keys {
		e := v.table.vals[k]
		switch k {
		case "name":
			if s, ok := d.str(m.src, "mesh", k, e); ok {
				m.Name = s
			}
		case "port":
			if p, ok := d.port(m.src, "mesh", k, e); ok {
				m.Port = p
			}
		case "mtu":
			if n, ok := d.integer(m.src, "mesh", k, e); ok {
				if msg, hint := mtuProblem(n); msg != "" {
					m.src.bad[k] = true
					d.add(e.at, "mesh.mtu", msg, hint)
					break
				}
				m.MTU = int(n)
			}
		case "deny":
			if s, ok := d.str(m.src, "mesh", k, e); ok {
				m.Deny = s
			}
		case "conntrack_max":
			if n, ok := d.integer(m.src, "mesh", k, e); ok {
				if msg, hint := conntrackProblem(n); msg != "" {
					m.src.bad[k] = true
					d.add(e.at, "mesh.conntrack_max", msg, hint)
					break
				}
				m.ConntrackMax = int(n)
			}
		case "domain", "dns_upstream":
			d.meshDNS(m, k, e)
		case "resolve_interval":
			if s, ok := d.str(m.src, "mesh", k, e); ok {
				iv, err := time.ParseDuration(s)
				if msg, hint := resolveIntervalProblem(s, iv, err); msg != "" {
					m.src.bad[k] = true
					d.add(e.at, "mesh.resolve_interval", msg, hint)
					break
				}
				m.ResolveInterval = iv
			}
		default:
			sug = append(sug, d.unknown(e, "mesh", k, meshKeys))
			if k == "node" {
				m.src.bad["node"] = true // no "the mesh has no nodes" on top
			}
		}
	}
	misspelt(m.src, sug)
}

func (d *decoder) nodes(m *Mesh, v *value) {
	if v.kind != kindArray {
		d.add(v.key, "node", "must be an array of tables, not "+v.kind.describe(), "start every node with [[node]] (double brackets)")
		m.src.bad["node"] = true
		return
	}
	for _, e := range v.elems {
		if e.kind != kindTable {
			d.add(e.at, "node", "must be a table, not "+e.kind.describe(), "start every node with [[node]] (double brackets)")
			m.src.bad["node"] = true // no "the mesh has no nodes" on top of this
			continue
		}
		m.Nodes = append(m.Nodes, d.node(e))
	}
	if len(m.Nodes) > 0 {
		delete(m.src.bad, "node")
	}
}

func (d *decoder) node(v *value) Node {
	n := Node{Line: v.at.Line, src: newSource(v.at)}
	var sug []string
	for _, k := range v.table.keys {
		e := v.table.vals[k]
		switch k {
		case "name":
			if s, ok := d.str(n.src, "node", k, e); ok {
				n.Name = s
			}
		case "public_key":
			if s, ok := d.str(n.src, "node", k, e); ok {
				key, err := parsePublicKey(s)
				if err != nil {
					n.src.bad[k] = true
					d.add(e.at, "node.public_key", fmt.Sprintf("%q is not a public key: %v", s, err), keyHint)
					break
				}
				n.PublicKey = key
			}
		case "address":
			n.Addresses = d.prefixes(n.src, k, e, true, parseAddress)
		case "endpoint":
			if s, ok := d.str(n.src, "node", k, e); ok {
				n.Endpoint = s
			}
		case "subnets":
			n.Subnets = d.prefixes(n.src, k, e, false, parseSubnet)
		case "containers":
			n.Containers = d.prefixes(n.src, k, e, false, parseSubnet)
		case "keepalive":
			if s, ok := d.str(n.src, "node", k, e); ok {
				ka, err := time.ParseDuration(s)
				switch {
				case err != nil:
					n.src.bad[k] = true
					d.add(e.at, "node.keepalive", fmt.Sprintf("%q is not a duration", s), `write a number with a unit, e.g. "25s"`)
				case ka == 0:
					n.src.bad[k] = true
					d.add(e.at, "node.keepalive", fmt.Sprintf("%q turns keepalive off", s), `remove the key to turn keepalive off, or set e.g. "25s" for a node behind NAT`)
				default:
					n.Keepalive = ka
				}
			}
		case "port":
			if p, ok := d.port(n.src, "node", k, e); ok {
				n.Port = p
			}
		case "groups":
			d.groups(&n, e)
		default:
			sug = append(sug, d.unknown(e, "node", k, nodeKeys))
		}
	}
	misspelt(n.src, sug)
	return n
}

// record notes where the value of key was written.
func record(src *source, key string, v *value) *field {
	f := &field{val: v.at}
	src.fields[key] = f
	return f
}

func (d *decoder) typeError(src *source, table, key string, v *value, want string) {
	src.bad[key] = true
	full := table + "." + key
	d.add(v.at, full, fmt.Sprintf("must be %s, not %s", want, v.kind.describe()), "write it like "+examples[full])
}

func (d *decoder) str(src *source, table, key string, v *value) (string, bool) {
	record(src, key, v)
	if v.kind != kindString {
		d.typeError(src, table, key, v, "a string")
		return "", false
	}
	return v.text, true
}

func (d *decoder) integer(src *source, table, key string, v *value) (int64, bool) {
	record(src, key, v)
	if v.kind != kindInteger {
		d.typeError(src, table, key, v, "an integer")
		return 0, false
	}
	// go-toml has checked the literal; base 0 reads its 0x, 0o and 0b
	// prefixes and, with them, its underscores.
	n, err := strconv.ParseInt(v.text, 0, 64)
	if err != nil {
		src.bad[key] = true
		d.add(v.at, table+"."+key, fmt.Sprintf("%s is out of range", v.text), "write it like "+examples[table+"."+key])
		return 0, false
	}
	return n, true
}

func (d *decoder) port(src *source, table, key string, v *value) (uint16, bool) {
	n, ok := d.integer(src, table, key, v)
	if !ok {
		return 0, false
	}
	if msg, hint := portProblem(n); msg != "" {
		src.bad[key] = true
		d.add(v.at, table+"."+key, msg, hint)
		return 0, false
	}
	return uint16(n), true
}

// prefixes decodes a list of prefixes, or a single one when single is set.
// Elements that fail to parse are reported and left out.
func (d *decoder) prefixes(src *source, key string, v *value, single bool, parse func(string) (netip.Prefix, string, string)) []netip.Prefix {
	f := record(src, key, v)
	full := "node." + key
	elems := v.elems
	switch {
	case v.kind == kindString && single:
		elems = []*value{v}
	case v.kind == kindArray:
	case single:
		d.typeError(src, "node", key, v, "a string or an array of strings")
		return nil
	default:
		d.typeError(src, "node", key, v, "an array of strings")
		return nil
	}
	var out []netip.Prefix
	failed := false
	for _, e := range elems {
		if e.kind != kindString {
			failed = true
			d.add(e.at, full, "must hold strings, not "+e.kind.describe(), "write it like "+examples[full])
			continue
		}
		p, msg, hint := parse(e.text)
		if msg != "" {
			failed = true
			d.add(e.at, full, msg, hint)
			continue
		}
		out = append(out, p)
		f.elems = append(f.elems, e.at)
	}
	if failed && len(out) == 0 {
		src.bad[key] = true
	}
	return out
}

// unknown reports a key that table does not accept, suggesting the key that
// was probably meant.
func (d *decoder) unknown(v *value, table, key string, known []string) (suggested string) {
	full, where := key, "the top level holds "+topTables
	switch table {
	case "":
	case "mesh":
		full, where = "mesh."+key, "[mesh] keys are "+strings.Join(known, ", ")
	default:
		full, where = table+"."+key, "[["+table+"]] keys are "+strings.Join(known, ", ")
	}
	hint := where
	s := suggest(key, known)
	switch {
	case table != "" && slices.Contains(topKeys, key):
		// A top-level key written after a header lands in that table.
		hint = fmt.Sprintf("%s belongs at the top level: write %s headers instead", key, topTables)
		s = ""
	case s != "":
		hint = fmt.Sprintf("did you mean %q? %s", s, where)
	}
	d.add(v.key, full, "unknown key", hint)
	return s
}

// misspelt marks the keys that unknown keys were probably meant to be, when
// the table lacks them, so that a misspelt key is reported once rather than
// again as a missing one.
func misspelt(src *source, suggested []string) {
	for _, k := range suggested {
		if k != "" && !src.has(k) {
			src.bad[k] = true
		}
	}
}

// aliases maps keys of other tools (wg-quick, mostly), normalised, to ours.
var aliases = map[string]string{
	"allowedips":          "subnets",
	"persistentkeepalive": "keepalive",
	"listenport":          "port",
	"addresses":           "address",
	"subnet":              "subnets",
	"nodes":               "node",
	"peer":                "node",
	"peers":               "node",
	"interface":           "mesh",
}

// suggest returns the key of known that key was probably meant to be, or "".
func suggest(key string, known []string) string {
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	nk := norm(key)
	if a, ok := aliases[nk]; ok {
		for _, k := range known {
			if k == a {
				return k
			}
		}
	}
	best, bestDist := "", 3 // suggest only keys within two edits
	for _, k := range known {
		if norm(k) == nk {
			return k
		}
		if dist := editDistance(nk, norm(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b) // keys are short; don't spend time on junk
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parsePublicKey decodes a base64 public key, as printed by
// overlay-node pubkey and wg pubkey. The reason it returns does not repeat
// the input, which the caller quotes.
func parsePublicKey(s string) (crypto.PublicKey, error) {
	if n := base64.StdEncoding.EncodedLen(crypto.KeySize); len(s) != n {
		return crypto.PublicKey{}, fmt.Errorf("want %d base64 characters, got %d", n, len(s))
	}
	k, err := crypto.ParsePublicKey(s)
	if err != nil {
		return crypto.PublicKey{}, errors.New("not valid base64 of 32 bytes")
	}
	return k, nil
}

// parseAddress parses an overlay address: an IP address with the prefix
// length of the overlay network.
func parseAddress(s string) (netip.Prefix, string, string) {
	p, err := netip.ParsePrefix(s)
	if err == nil {
		return p, "", ""
	}
	if a, aerr := netip.ParseAddr(s); aerr == nil {
		bits := 24
		if a.Is6() {
			bits = 64
		}
		return p, fmt.Sprintf("%q has no prefix length", s),
			fmt.Sprintf(`add the overlay network's prefix length, e.g. "%s/%d"`, a, bits)
	}
	return p, fmt.Sprintf("%q is not an IP address with a prefix length: %s", s, netipReason(err)), addressHint
}

// parseSubnet parses a subnet behind a node. Whether it is canonical is
// checked by Validate.
func parseSubnet(s string) (netip.Prefix, string, string) {
	p, err := netip.ParsePrefix(s)
	if err == nil {
		return p, "", ""
	}
	if a, aerr := netip.ParseAddr(s); aerr == nil {
		return p, fmt.Sprintf("%q has no prefix length", s),
			fmt.Sprintf(`write the network with its prefix length, or "%s/%d" for this one host`, a, a.BitLen())
	}
	return p, fmt.Sprintf("%q is not a network in CIDR form: %s", s, netipReason(err)),
		`write the network address and prefix length, e.g. "192.168.60.0/24" or "fd00:60::/64"`
}

// netipReason strips the echo of the input from a net/netip parse error,
// since our message quotes the input already.
func netipReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "): "); i >= 0 {
		return s[i+3:]
	}
	return s
}
