package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/uapi"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The local attack surface of a running node: its two sockets are root's
// alone, a user who is not root is told so, and the only TCP port it
// listens on is the one --metrics names.
func TestLocalAttackSurface(t *testing.T) {
	lan := nstest.NewLAN(t, 2)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b := m.nodes[0], m.nodes[1]
	m.start(a)
	m.start(b, "--metrics", "127.0.0.1:9586")

	t.Run("sockets are root-only", func(t *testing.T) {
		for _, path := range []string{control.SocketPath(a.iface), uapi.SocketPath(a.iface)} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("%s: mode %#o, want 0600", path, got)
			}
			assertRootOwned(t, path, fi)
			dir := filepath.Dir(path)
			di, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := di.Mode().Perm(); got != 0o700 {
				t.Errorf("%s: mode %#o, want 0700", dir, got)
			}
			assertRootOwned(t, dir, di)
		}
	})

	t.Run("status as nobody", func(t *testing.T) {
		bin := worldExecutableCopy(t, m.bin)
		cmd := exec.Command(bin, "status", "--interface", a.iface)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitError {
			t.Fatalf("status as nobody: got %v, want exit status %d\n%s", err, exitError, out)
		}
		if !containsAll(string(out), "permission denied", "run as root") || strings.Contains(string(out), "goroutine") {
			t.Errorf("status as nobody: unclear error:\n%s", out)
		}
	})

	t.Run("metrics binds only where told", func(t *testing.T) {
		if got := listeningTCP(t, a.proc.PID()); len(got) != 0 {
			t.Errorf("node without --metrics listens on TCP %v, want nothing", got)
		}
		want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9586")}
		if got := listeningTCP(t, b.proc.PID()); !slices.Equal(got, want) {
			t.Errorf("node with --metrics 127.0.0.1:9586 listens on TCP %v, want %v", got, want)
		}
	})
}

func assertRootOwned(t *testing.T, path string, fi os.FileInfo) {
	t.Helper()
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != 0 {
		t.Errorf("%s: not owned by root", path)
	}
}

// worldExecutableCopy copies the binary at bin into a directory any user
// may enter, for a process that runs as another user: the build directory
// is root's.
func worldExecutableCopy(t *testing.T, bin string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "overlay-node-surface-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "overlay-node")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// listeningTCP returns the TCP addresses the process pid listens on: the
// listening sockets of its namespace whose inode is one of its descriptors.
func listeningTCP(t *testing.T, pid int) []netip.AddrPort {
	t.Helper()
	inodes := make(map[string]bool)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []netip.AddrPort
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			out = append(out, parseProcAddr(t, fields[1]))
		}
		f.Close()
	}
	return out
}

// parseProcAddr parses an address of /proc/net/tcp: the address's 32-bit
// words in host (little-endian) order, in hex, then ':' and the port.
func parseProcAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	host, port, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(host)
	if err != nil {
		t.Fatalf("bad /proc address %q", s)
	}
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		t.Fatalf("bad /proc port %q", s)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(p))
}
