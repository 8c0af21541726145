package meshsource

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A watched file is delivered after an edit, after an atomic symlink swap
// as a Kubernetes ConfigMap does it, and again after a broken write that
// a later write fixes.
func TestFileWatch(t *testing.T) {
	dir := t.TempDir()
	// The ConfigMap layout: mesh.toml -> ..data/mesh.toml, ..data -> ..v1.
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("..v1/mesh.toml", "one")
	write("..v2/mesh.toml", "two")
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink("..data/mesh.toml", filepath.Join(dir, "mesh.toml")))

	f, err := NewFile(filepath.Join(dir, "mesh.toml"), true, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if s, err := f.Read(t.Context()); err != nil || string(s.Data) != "one" {
		t.Fatalf("read: %q, %v", s.Data, err)
	}

	// The swap: a new link, renamed over the old one.
	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	if s := next(t, f, 2*time.Second); string(s.Data) != "two" {
		t.Fatalf("after the swap: got %q, want two", s.Data)
	}

	// An edit in place of the file the link now leads to.
	write("..v2/mesh.toml", "three")
	if s := next(t, f, 2*time.Second); string(s.Data) != "three" {
		t.Fatalf("after an edit: got %q, want three", s.Data)
	}
	// The same bytes again are no change.
	write("..v2/mesh.toml", "three")
	select {
	case s := <-f.Updates():
		t.Fatalf("unchanged file delivered: %q", s.Data)
	case <-time.After(3 * Debounce):
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
