package meshsource

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// The cache is the last mesh a node applied from etcd, so that it can
// start while etcd is down. Its first line records where the mesh came
// from; the rest is the mesh file.
const cacheHeader = "# overlay-node cache of "

// WriteCache saves s at path, mode 0600, replacing the file atomically.
func WriteCache(path string, s Snapshot) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("mesh cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".mesh-cache-*")
	if err != nil {
		return fmt.Errorf("mesh cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	fmt.Fprintf(tmp, "%s%s %d\n", cacheHeader, s.Name, s.Revision)
	tmp.Write(s.Data)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("mesh cache: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("mesh cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mesh cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("mesh cache: %w", err)
	}
	return nil
}

// ReadCache returns the snapshot WriteCache saved at path.
func ReadCache(path string) (Snapshot, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Snapshot{}, fmt.Errorf("mesh cache: %w", err)
	}
	line, data, ok := bytes.Cut(raw, []byte("\n"))
	rest, isCache := bytes.CutPrefix(line, []byte(cacheHeader))
	name, rev, _ := bytes.Cut(rest, []byte(" "))
	n, err := strconv.ParseInt(string(rev), 10, 64)
	if !ok || !isCache || err != nil {
		return Snapshot{}, fmt.Errorf("mesh cache: %s is not a mesh cache (hint: delete it; the next mesh from etcd writes it again)", path)
	}
	return Snapshot{Name: string(name), Data: data, Revision: n, Cached: true}, nil
}
