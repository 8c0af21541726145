package nstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// uapiDir is where wireguard-go puts its UAPI sockets. The path is global, not
// per namespace, which is how the test process reaches every instance.
const uapiDir = "/var/run/wireguard"

// wgStartTimeout bounds how long wireguard-go may take to open its socket.
const wgStartTimeout = 10 * time.Second

// wgEnv has wireguard-go log handshakes and errors, for the failure log. It
// logs nothing per data packet at this level.
var wgEnv = []string{"LOG_LEVEL=verbose"}

// A WGGo is a wireguard-go process running in a host namespace: a stock
// WireGuard peer to test against.
type WGGo struct {
	// Immutable.
	Name string // interface name, in Host's namespace
	Host *Host
	Proc *Proc

	client *wgctrl.Client // over the UAPI socket
}

// StartWireGuardGo builds wireguard-go if need be and runs it in the
// foreground in h's namespace, creating the TUN interface ifname there, and
// returns once its UAPI socket accepts connections. The interface is down and
// unconfigured. ifname must be unique across test binaries, as [UniqueIfName]
// makes it, because the socket path is global. t's cleanup stops the process
// and removes its socket.
func StartWireGuardGo(t testing.TB, h *Host, ifname string) *WGGo {
	t.Helper()
	bin := BuildWireGuardGo(t)
	sock := filepath.Join(uapiDir, ifname+".sock")
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Fatalf("nstest: wireguard-go %s: %s is in use", ifname, sock)
	}
	os.Remove(sock) // stale, from a process that died; we would mistake it for ours

	w := &WGGo{Name: ifname, Host: h, Proc: h.StartEnv(t, wgEnv, bin, "-f", ifname)}
	track(t, func() {
		if w.client != nil {
			w.client.Close()
		}
		w.Proc.stop()
		os.Remove(sock)
	})
	if err := w.waitSocket(sock); err != nil {
		t.Fatalf("nstest: wireguard-go %s in %s: %v; output:\n%s", ifname, h.Name, err, w.Proc.Output())
	}
	client, err := wgctrl.New()
	if err != nil {
		t.Fatalf("nstest: wgctrl: %v", err)
	}
	w.client = client
	return w
}

// waitSocket waits for the UAPI socket to accept a connection.
func (w *WGGo) waitSocket(sock string) error {
	deadline := time.Now().Add(wgStartTimeout)
	for time.Now().Before(deadline) {
		if err := w.Proc.Wait(20 * time.Millisecond); err != ErrRunning {
			return fmt.Errorf("exited before opening %s: %v", sock, err)
		}
		if c, err := net.Dial("unix", sock); err == nil {
			return c.Close()
		}
	}
	return fmt.Errorf("no UAPI socket %s after %v", sock, wgStartTimeout)
}

// Configure applies cfg to the device over UAPI, as wg set would.
func (w *WGGo) Configure(cfg wgtypes.Config) error {
	if err := w.client.ConfigureDevice(w.Name, cfg); err != nil {
		return fmt.Errorf("configure %s: %w", w.Name, err)
	}
	return nil
}

// Device returns the device's configuration and peer state, as wg show would.
func (w *WGGo) Device() (*wgtypes.Device, error) {
	d, err := w.client.Device(w.Name)
	if err != nil {
		return nil, fmt.Errorf("query %s: %w", w.Name, err)
	}
	return d, nil
}

// AddAddr assigns prefix (an address with its subnet length, "10.77.0.1/24")
// to the interface and brings it up, failing t on error.
func (w *WGGo) AddAddr(t testing.TB, prefix string) {
	t.Helper()
	w.Host.MustExec(t, "ip", "addr", "add", prefix, "dev", w.Name)
	w.Host.MustExec(t, "ip", "link", "set", w.Name, "up")
}

// AddRoute routes prefix into the interface, failing t on error.
func (w *WGGo) AddRoute(t testing.TB, prefix string) {
	t.Helper()
	w.Host.MustExec(t, "ip", "route", "add", prefix, "dev", w.Name)
}
