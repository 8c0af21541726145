package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// up --watch reloads when the mesh file changes: an edit in place, and a
// Kubernetes ConfigMap update, which swaps a symlink to a new directory.
// A broken write is rejected, and the next write that fixes it applies.
func TestWatchMeshFile(t *testing.T) {
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]

	// The ConfigMap layout: mesh.toml -> ..data/mesh.toml, ..data -> ..v1.
	cm := filepath.Join(m.dir, "configmap")
	for _, d := range []string{"..v1", "..v2"} {
		if err := os.MkdirAll(filepath.Join(cm, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("..v1", filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/mesh.toml", filepath.Join(cm, "mesh.toml")); err != nil {
		t.Fatal(err)
	}
	// The nodes read the file through the links. Writes replace the file
	// the links lead to: write replaces the path it is given, and would
	// turn a link into a plain file.
	flat, link, v1 := m.path, filepath.Join(cm, "mesh.toml"), filepath.Join(cm, "..v1", "mesh.toml")
	m.path = v1
	m.write([]*meshNode{a, b})
	m.path = link
	m.start(a, "--watch")
	m.start(b, "--watch")
	ping(t, a, b.addr.Addr())

	reloads := func(n *meshNode) int { return strings.Count(n.proc.Output(), "mesh file reloaded") }

	// An edit of the file behind the links: c joins.
	m.path = v1
	m.write(m.nodes)
	waitUntil(t, 5*time.Second, "a reloads after an edit", func() bool { return reloads(a) == 1 })
	m.path = link
	m.start(c, "--watch")
	ping(t, a, c.addr.Addr())

	// A ConfigMap update: the new file in ..v2, then ..data swapped to it.
	// c leaves.
	m.path = flat
	m.write([]*meshNode{a, b})
	data, err := os.ReadFile(flat)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cm, "..v2", "mesh.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..v2", filepath.Join(cm, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cm, "..data_tmp"), filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "a reloads after the swap", func() bool { return reloads(a) == 2 })
	if n := len(status(t, a).Peers); n != 1 {
		t.Errorf("after the swap a has %d peers, want 1", n)
	}

	// A broken write is rejected; the mesh in force stays; the next
	// write applies.
	live := filepath.Join(cm, "..v2", "mesh.toml")
	if err := os.WriteFile(live, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, a, "reload failed; keeping the running configuration")
	ping(t, a, b.addr.Addr())
	m.path = live
	m.write(m.nodes)
	waitUntil(t, 5*time.Second, "a reloads after the fix", func() bool { return reloads(a) == 3 })
	ping(t, a, c.addr.Addr())
}
