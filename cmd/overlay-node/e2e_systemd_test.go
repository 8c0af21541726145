package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// A real overlay-node under a stand-in for systemd: $NOTIFY_SOCKET names
// a datagram socket of the test. The daemon says READY=1 once its
// interface is up, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a
// SIGHUP, and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	lan := nstest.NewLAN(t, 1)
	m := newTestMesh(t, lan.Hosts, nil)
	a := m.nodes[0]
	sock := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	next := func(what string) string {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v\n%s", what, err, a.proc.Output())
		}
		return string(buf[:n])
	}

	a.proc = a.host.StartEnv(t, []string{"NOTIFY_SOCKET=" + sock}, m.bin,
		"up", "-c", m.path, "-k", a.keyPath, "--interface", a.iface)
	if got := next("READY=1"); !strings.HasPrefix(got, "READY=1\n") {
		t.Fatalf("first notification: got %q, want READY=1", got)
	}
	// Ready means forwarding: the interface is up with its address.
	if out := a.host.MustExec(t, "ip", "-o", "addr", "show", "dev", a.iface); !strings.Contains(string(out), a.addr.String()) {
		t.Errorf("at READY=1, %s has no %s: %s", a.iface, a.addr, out)
	}

	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := next("RELOADING=1"); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("on SIGHUP: got %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := next("READY=1 after the reload"); !strings.HasPrefix(got, "READY=1\n") {
		t.Errorf("after the reload: got %q, want READY=1", got)
	}
	// The node logs the reload before it notifies, but the log reaches the
	// test through a pipe that may lag the datagram: wait for the pipe.
	if !poll(2*time.Second, func() bool { return strings.Contains(a.proc.Output(), "mesh file reloaded") }) {
		t.Errorf("READY=1 came before the reload was done:\n%s", a.proc.Output())
	}

	if err := a.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := next("STOPPING=1"); got != "STOPPING=1" {
		t.Errorf("on SIGTERM: got %q, want STOPPING=1", got)
	}
	if err := a.proc.Wait(5 * time.Second); err != nil {
		t.Errorf("exit: %v", err)
	}
}

// The example units pass systemd-analyze verify, with ExecStart pointed at
// a real binary (verify checks that it exists).
func TestSystemdUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed: skipping the unit check")
	}
	bin := nstest.BuildOverlayNode(t)
	dir := t.TempDir()
	for unit, as := range map[string]string{
		"overlay-node.service":  "overlay-node.service",
		"overlay-node@.service": "overlay-node@ovl0.service", // an instance of the template
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "systemd", unit))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
			"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE", "ProtectSystem=strict", "DeviceAllow=/dev/net/tun rw"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: no %q", unit, want)
			}
		}
		path := filepath.Join(dir, as)
		text := strings.ReplaceAll(string(b), "/usr/local/bin/overlay-node", bin)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on a key it cannot parse; what it prints is the
		// verdict.
		out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
}
