package config

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
)

// valid uses every feature of the file, in the ways TOML allows writing it.
const valid = `# a comment
[mesh]
name = "prod"
port = 0xCAFE # 51966
mtu = 1_380

[[node]]
name = "a"
public_key = "` + keyA + `"
address = "10.100.0.1/24"
endpoint = "192.0.2.1:51820"
subnets = ["172.20.1.0/24", "172.20.1.128/25"] # overlapping subnets of one node are fine

[[node]]
name = "b"
public_key = '` + keyB + `'
address = [
  "10.100.0.2/24",
  "fd00:100::2/64",
]
endpoint = "[2001:db8::2]:51821"
subnets = ["fd00:20:2::/64"]
port = 51821

[[node]]
name = "c-1"
public_key = "` + keyC + `"
address = "10.100.0.3/32"
endpoint = "gw.example.net:51820"
keepalive = "25s"
subnets = []

[[node]]
"name" = "d"
public_key = "` + keyD + `"
address = ["10.100.1.1/24"]
keepalive = "2m"
`

func mustKey(t *testing.T, s string) crypto.PublicKey {
	t.Helper()
	k, err := crypto.ParsePublicKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

// strip clears what depends on where a mesh came from, to compare meshes.
func strip(m *Mesh) *Mesh {
	c := *m
	c.Path, c.Hash, c.src = "", "", nil
	c.Nodes = append([]Node(nil), m.Nodes...)
	for i := range c.Nodes {
		c.Nodes[i].Line, c.Nodes[i].src = 0, nil
		if len(c.Nodes[i].Subnets) == 0 {
			c.Nodes[i].Subnets = nil
		}
		if len(c.Nodes[i].Groups) == 0 {
			c.Nodes[i].Groups = nil
		}
	}
	c.Allow = append([]Allow(nil), m.Allow...)
	for i := range c.Allow {
		c.Allow[i].Line, c.Allow[i].src = 0, nil
	}
	c.Expect = append([]Expect(nil), m.Expect...)
	for i := range c.Expect {
		c.Expect[i].Line, c.Expect[i].src = 0, nil
	}
	c.Services = append([]Service(nil), m.Services...)
	for i := range c.Services {
		c.Services[i].Line, c.Services[i].src = 0, nil
	}
	if len(c.Services) == 0 {
		c.Services = nil
	}
	return &c
}

func TestParseValid(t *testing.T) {
	m, err := Parse("valid.toml", []byte(valid))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Mesh{
		Name: "prod", Port: 51966, MTU: 1380, Deny: DefaultDeny, ConntrackMax: DefaultConntrackMax, ResolveInterval: DefaultResolveInterval,
		Nodes: []Node{
			{Name: "a", PublicKey: mustKey(t, keyA), Addresses: prefixes("10.100.0.1/24"), Endpoint: "192.0.2.1:51820",
				Subnets: prefixes("172.20.1.0/24", "172.20.1.128/25"), Port: 51966},
			{Name: "b", PublicKey: mustKey(t, keyB), Addresses: prefixes("10.100.0.2/24", "fd00:100::2/64"), Endpoint: "[2001:db8::2]:51821",
				Subnets: prefixes("fd00:20:2::/64"), Port: 51821},
			{Name: "c-1", PublicKey: mustKey(t, keyC), Addresses: prefixes("10.100.0.3/32"), Endpoint: "gw.example.net:51820",
				Keepalive: 25 * time.Second, Port: 51966},
			{Name: "d", PublicKey: mustKey(t, keyD), Addresses: prefixes("10.100.1.1/24"), Keepalive: 2 * time.Minute, Port: 51966},
		},
	}
	if got := strip(m); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if m.Path != "valid.toml" {
		t.Errorf("got Path %q, want %q", m.Path, "valid.toml")
	}
	sum := sha256.Sum256([]byte(valid))
	if want := hex.EncodeToString(sum[:]); m.Hash != want {
		t.Errorf("got Hash %s, want %s", m.Hash, want)
	}
	for i, line := range []int{7, 14, 25, 33} {
		if m.Nodes[i].Line != line {
			t.Errorf("node %d: got Line %d, want %d", i, m.Nodes[i].Line, line)
		}
	}
}

// TestParseEncodings checks files with CRLF line ends and a byte order mark.
func TestParseEncodings(t *testing.T) {
	doc := head + nodeA + nodeC("port = 0\n")
	tests := []struct {
		name string
		data string
	}{
		{"crlf", strings.ReplaceAll(doc, "\n", "\r\n")},
		{"bom", "\ufeff" + doc},
	}
	for _, tt := range tests {
		_, err := Parse(tt.name, []byte(tt.data))
		list := errorList(t, err)
		if len(list) != 1 || list[0].Line != 11 || list[0].Col != 8 {
			t.Errorf("%s: got %v, want one error at 11:8", tt.name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	m, err := Parse("d.toml", []byte(head+nodeA+nodeC("port = 4000\n")))
	if err != nil {
		t.Fatal(err)
	}
	if m.Port != DefaultPort || m.MTU != encap.DefaultMTU {
		t.Errorf("got port %d mtu %d, want %d and %d", m.Port, m.MTU, DefaultPort, encap.DefaultMTU)
	}
	if m.Nodes[0].Port != DefaultPort || m.Nodes[1].Port != 4000 {
		t.Errorf("got node ports %d and %d, want %d and 4000", m.Nodes[0].Port, m.Nodes[1].Port, DefaultPort)
	}
	if m.Nodes[0].Keepalive != 0 || m.Nodes[0].Endpoint != "" || m.Nodes[0].Subnets != nil {
		t.Errorf("got node %+v, want no keepalive, endpoint or subnets", m.Nodes[0])
	}
	// The mesh port applies to nodes written before [mesh].
	m, err = Parse("d.toml", []byte(nodeA+"[mesh]\nname = \"t\"\nport = 5000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Nodes[0].Port != 5000 {
		t.Errorf("got node port %d, want the mesh port 5000", m.Nodes[0].Port)
	}
}

func TestRoundTrip(t *testing.T) {
	m, err := Parse("valid.toml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	out, err := marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	m2, err := Parse("out.toml", out)
	if err != nil {
		t.Fatalf("Parse of marshal output: %v\n%s", err, out)
	}
	if got, want := strip(m2), strip(m); !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the mesh:\ngot  %+v\nwant %+v\n%s", got, want, out)
	}
	// marshal is stable: a second round gives the same bytes.
	out2, err := marshal(m2)
	if err != nil {
		t.Fatal(err)
	}
	if string(out2) != string(out) {
		t.Errorf("second marshal differs:\n%s\nfirst:\n%s", out2, out)
	}
}

func TestSelf(t *testing.T) {
	m, err := Parse("valid.toml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.Self(mustKey(t, keyB))
	if err != nil {
		t.Fatalf("Self: %v", err)
	}
	if n.Name != "b" || n != &m.Nodes[1] {
		t.Errorf("got node %q, want b (a pointer into Nodes)", n.Name)
	}
	other := mustKey(t, "mDAhLNLwyF+hYsYIOtph0P9Wm/UMbc+wLtZrfSQ302M=")
	_, err = m.Self(other)
	if !errors.Is(err, ErrNotInMesh) {
		t.Fatalf("got %v, want ErrNotInMesh", err)
	}
	if !strings.Contains(err.Error(), other.String()) || !strings.Contains(err.Error(), "valid.toml") {
		t.Errorf("got %q, want the key and the file named", err)
	}
}

func TestAllowedIPs(t *testing.T) {
	m, err := Parse("valid.toml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		node int
		want []netip.Prefix
	}{
		{0, prefixes("10.100.0.1/32", "172.20.1.0/24", "172.20.1.128/25")},
		{1, prefixes("10.100.0.2/32", "fd00:100::2/128", "fd00:20:2::/64")},
		{2, prefixes("10.100.0.3/32")},
	}
	for _, tt := range tests {
		if got := m.Nodes[tt.node].AllowedIPs(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("node %s: got %v, want %v", m.Nodes[tt.node].Name, got, tt.want)
		}
	}
	if got, want := m.OverlayPrefixes(), prefixes("10.100.0.0/24", "fd00:100::/64", "10.100.0.3/32", "10.100.1.0/24"); !reflect.DeepEqual(got, want) {
		t.Errorf("OverlayPrefixes: got %v, want %v", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()

	_, err := Load(filepath.Join(dir, "missing.toml"))
	if !errors.Is(err, ErrNoConfig) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want ErrNoConfig and fs.ErrNotExist", err)
	}
	var list ErrorList
	if errors.As(err, &list) {
		t.Errorf("missing file: got an ErrorList, want it told apart from an invalid file")
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if errors.Is(err, ErrNoConfig) {
		t.Errorf("invalid file: got ErrNoConfig, want an ErrorList")
	}
	if list := errorList(t, err); list[0].File != bad {
		t.Errorf("got File %q, want %q", list[0].File, bad)
	}

	good := filepath.Join(dir, "mesh.toml")
	if err := os.WriteFile(good, []byte(valid), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(good)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if m.Path != good || len(m.Nodes) != 4 {
		t.Errorf("got Path %q with %d nodes, want %q with 4", m.Path, len(m.Nodes), good)
	}

	if _, err := Load(dir); err == nil || errors.Is(err, ErrNoConfig) {
		t.Errorf("directory: got %v, want a read error", err)
	}
}

// TestValidateInCode checks a Mesh built in code: errors have no position.
func TestValidateInCode(t *testing.T) {
	m := &Mesh{
		Name: "code", Port: DefaultPort, MTU: encap.DefaultMTU,
		Nodes: []Node{
			{Name: "a", PublicKey: mustKey(t, keyA), Addresses: prefixes("10.100.0.1/24"), Port: DefaultPort},
			{Name: "b", PublicKey: mustKey(t, keyB), Addresses: prefixes("10.100.0.2/24"), Port: DefaultPort},
		},
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	m.Nodes[1].Subnets = prefixes("10.100.0.0/24")
	m.Nodes[1].Port = 0
	err := m.Validate()
	list := errorList(t, err)
	want := []string{
		"mesh: node.port: 0 is out of range 1..65535 (hint: use a UDP port from 1 to 65535; the default is 51820)",
		`mesh: node.subnets: 10.100.0.0/24 contains 10.100.0.1, the address of node "a" (hint: narrow the subnet so that it leaves out the overlay addresses of other nodes)`,
	}
	if len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i := range want {
		if got := list[i].Error(); got != want[i] {
			t.Errorf("got  %s\nwant %s", got, want[i])
		}
	}
}

// TestValidateAfterChange checks that a parsed mesh changed in code still
// reports positions from its file.
func TestValidateAfterChange(t *testing.T) {
	m, err := Parse("valid.toml", []byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	m.Nodes[3].Addresses = prefixes("10.100.0.1/24")
	list := errorList(t, m.Validate())
	if len(list) != 1 || list[0].Line != 36 || list[0].Col != 12 {
		t.Fatalf("got %v, want one error at 36:12", list)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "m.toml", Line: 3, Col: 7, Key: "node.name", Msg: "missing", Hint: "add it"}, "m.toml:3:7: node.name: missing (hint: add it)"},
		{Error{File: "m.toml", Line: 1, Col: 1, Msg: "invalid TOML: x"}, "m.toml:1:1: invalid TOML: x"},
		{Error{Key: "mesh.name", Msg: "missing"}, "mesh: mesh.name: missing"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestResolveEndpoint(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"192.0.2.1:51820", "192.0.2.1:51820", ""},
		{"[2001:db8::1]:51820", "[2001:db8::1]:51820", ""},
		{"[::ffff:192.0.2.1]:51820", "192.0.2.1:51820", ""},
		{"192.0.2.1:0", "", "port 0"},
		{"192.0.2.1", "", "missing port"},
		{"host.invalid:http", "", `port "http"`},
		{"bad_host:51820", "", "not a valid IP address or host name"},
	}
	for _, tt := range tests {
		got, err := ResolveEndpoint(ctx, tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.in) {
				t.Errorf("%s: got %v, %v; want an error naming the input and containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: got %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}

	// Host names go through the resolver; localhost needs no network.
	got, err := ResolveEndpoint(ctx, "localhost:51820")
	if err != nil {
		t.Skipf("resolving localhost: %v", err)
	}
	if !got.Addr().IsLoopback() || got.Port() != 51820 {
		t.Errorf("localhost: got %v, want a loopback address with port 51820", got)
	}
	ctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ResolveEndpoint(ctx, "gw.example.invalid:51820"); err == nil {
		t.Errorf("canceled context: got no error")
	}
}
