package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// The file `export wg-quick` writes brings up a stock WireGuard peer:
// wg-quick, with wireguard-go as its userspace implementation, in a
// namespace of its own. Every overlay-node pings it and it pings every
// overlay-node.
func TestExportWgQuick(t *testing.T) {
	if _, err := exec.LookPath("wg-quick"); err != nil {
		t.Skip("wg-quick not installed (make deps installs wireguard-tools): skipping")
	}
	lan := nstest.NewLAN(t, 3)
	m := newTestMesh(t, lan.Hosts, nil)
	a, b, c := m.nodes[0], m.nodes[1], m.nodes[2]
	m.start(a)
	m.start(b)

	// The file name is the interface name.
	out, err := exec.Command(m.bin, "export", "wg-quick", "-c", m.path, c.name).Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	file := strings.Replace(string(out), privateKeyPlaceholder, c.key.Base64(), 1)
	if file == string(out) {
		t.Fatalf("export: no private key placeholder in:\n%s", out)
	}
	conf := filepath.Join(t.TempDir(), c.iface+".conf")
	if err := os.WriteFile(conf, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	wggo := nstest.BuildWireGuardGo(t)
	env := []string{"WG_QUICK_USERSPACE_IMPLEMENTATION=" + wggo}
	wgQuick := func(ctx context.Context, verb string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", c.host.Name, "wg-quick", verb, conf)
		cmd.Env = append(os.Environ(), env...)
		return cmd.CombinedOutput()
	}
	if out, err := wgQuick(t.Context(), "up"); err != nil {
		t.Fatalf("wg-quick up: %v\n%s\nfile:\n%s", err, out, file)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := wgQuick(ctx, "down"); err != nil {
			t.Errorf("wg-quick down: %v\n%s", err, out)
		}
		killWireGuardGo(t, c.host)
	})

	for _, n := range []*meshNode{a, b} {
		ping(t, n, c.addr.Addr())
		ping(t, c, n.addr.Addr())
	}
	// The stock peer shows up in status like any node.
	if p := peerStatus(t, status(t, a), c.name); p.LatestHandshake == nil {
		t.Errorf("a: no handshake with the stock peer %s", c.name)
	}
}

// killWireGuardGo kills the wireguard-go that wg-quick started in h in the
// background, if it outlived its interface.
func killWireGuardGo(t *testing.T, h *nstest.Host) {
	out, err := exec.Command("ip", "netns", "pids", h.Name).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile("/proc/" + f + "/comm"); strings.TrimSpace(string(comm)) == "wireguard-go" {
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				t.Logf("kill wireguard-go %d: %v", pid, err)
			}
		}
	}
}
