package config

import (
	"bufio"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// examplesDir holds the mesh files users copy; every one must be valid.
const examplesDir = "../examples"

// TestExamples loads every mesh.toml under examples/ and fails on any error.
func TestExamples(t *testing.T) {
	var files []string
	err := filepath.WalkDir(examplesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "mesh.toml" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d mesh files under %s, want at least 4: %v", len(files), examplesDir, files)
	}
	for _, file := range files {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			m, err := Load(file)
			if err != nil {
				t.Fatalf("%v", err)
			}
			if len(m.Nodes) < 2 {
				t.Errorf("%s: got %d nodes, want a mesh of at least 2", file, len(m.Nodes))
			}
			// A wg-quick file next to the mesh must describe one of its nodes.
			confs, _ := filepath.Glob(filepath.Join(filepath.Dir(file), "*.conf"))
			for _, conf := range confs {
				checkWGQuick(t, m, conf)
			}
		})
	}
}

// wgQuick is the part of a wg-quick file that must agree with the mesh.
type wgQuick struct {
	address    []netip.Prefix
	listenPort string
	peers      []wgPeer
}

type wgPeer struct {
	publicKey, endpoint string
	allowedIPs          []netip.Prefix
}

func parseWGQuick(t *testing.T, path string) wgQuick {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c wgQuick
	section := ""
	list := func(v string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			ps = append(ps, p)
		}
		return ps
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "[Interface]" || line == "[Peer]" {
			section = line
			if section == "[Peer]" {
				c.peers = append(c.peers, wgPeer{})
			}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: cannot read %q", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case section == "[Interface]" && k == "Address":
			c.address = list(v)
		case section == "[Interface]" && k == "ListenPort":
			c.listenPort = v
		case section == "[Peer]" && k == "PublicKey":
			c.peers[len(c.peers)-1].publicKey = v
		case section == "[Peer]" && k == "Endpoint":
			c.peers[len(c.peers)-1].endpoint = v
		case section == "[Peer]" && k == "AllowedIPs":
			c.peers[len(c.peers)-1].allowedIPs = list(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return c
}

// checkWGQuick checks that the wg-quick file at path is the configuration of
// a node of m: same addresses and port, and one [Peer] per other node with
// its key, endpoint and allowed IPs.
func checkWGQuick(t *testing.T, m *Mesh, path string) {
	c := parseWGQuick(t, path)
	var self *Node
	for i := range m.Nodes {
		if slices.Equal(m.Nodes[i].Addresses, c.address) {
			self = &m.Nodes[i]
		}
	}
	if self == nil {
		t.Fatalf("%s: no node of the mesh has Address %v", path, c.address)
	}
	if want := strconv.Itoa(int(self.Port)); c.listenPort != want {
		t.Errorf("%s: got ListenPort %q, want node %s's port %s", path, c.listenPort, self.Name, want)
	}
	if got, want := len(c.peers), len(m.Nodes)-1; got != want {
		t.Errorf("%s: got %d peers, want %d (every other node)", path, got, want)
	}
	for _, p := range c.peers {
		k, err := parsePublicKey(p.publicKey)
		if err != nil {
			t.Errorf("%s: peer key %q: %v", path, p.publicKey, err)
			continue
		}
		n, err := m.Self(k)
		if err != nil || n == self {
			t.Errorf("%s: peer %s is not another node of the mesh", path, p.publicKey)
			continue
		}
		if p.endpoint != n.Endpoint {
			t.Errorf("%s: peer %s: got Endpoint %q, want %q", path, n.Name, p.endpoint, n.Endpoint)
		}
		if want := n.AllowedIPs(); !slices.Equal(p.allowedIPs, want) {
			t.Errorf("%s: peer %s: got AllowedIPs %v, want %v", path, n.Name, p.allowedIPs, want)
		}
	}
}
