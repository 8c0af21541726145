package nstest_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

// TestWireGuardGoPair proves the harness end to end: two wireguard-go peers on
// a LAN, configured over UAPI, pass pings and a byte-exact TCP stream through
// their tunnel, and nothing they used outlives the test.
func TestWireGuardGoPair(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()

	var (
		prefix  string
		procs   []*nstest.Proc
		wgNames []string
	)
	t.Run("tunnel", func(t *testing.T) {
		lan := nstest.NewLAN(t, 2)
		prefix = lan.Prefix
		a, b := lan.Hosts[0], lan.Hosts[1]
		if err := nstest.Ping(t, a, b.Addr.String()); err != nil {
			t.Fatalf("LAN: %v", err)
		}

		const port = 51820
		peers := []struct {
			host    *nstest.Host
			tunAddr string
		}{{a, "10.77.0.1"}, {b, "10.77.0.2"}}
		wgs := make([]*nstest.WGGo, len(peers))
		keys := make([]wgtypes.Key, len(peers))
		for i, p := range peers {
			wgs[i] = nstest.StartWireGuardGo(t, p.host, nstest.UniqueIfName("wg"))
			procs = append(procs, wgs[i].Proc)
			wgNames = append(wgNames, wgs[i].Name)
			key, err := wgtypes.GeneratePrivateKey()
			if err != nil {
				t.Fatal(err)
			}
			keys[i] = key
		}
		for i, p := range peers {
			other := peers[1-i]
			listen := port
			err := wgs[i].Configure(wgtypes.Config{
				PrivateKey:   &keys[i],
				ListenPort:   &listen,
				ReplacePeers: true,
				Peers: []wgtypes.PeerConfig{{
					PublicKey:         keys[1-i].PublicKey(),
					Endpoint:          &net.UDPAddr{IP: other.host.Addr.AsSlice(), Port: port},
					AllowedIPs:        []net.IPNet{ipNet(other.tunAddr + "/32")},
					ReplaceAllowedIPs: true,
				}},
			})
			if err != nil {
				t.Fatal(err)
			}
			wgs[i].AddAddr(t, p.tunAddr+"/24")
		}

		if err := nstest.Ping(t, a, "10.77.0.2"); err != nil {
			t.Fatalf("tunnel: %v", err)
		}
		const size = 4 << 20
		start := time.Now()
		sent, received, err := nstest.Transfer(t, a, b, "10.77.0.2", size)
		if err != nil {
			t.Fatal(err)
		}
		if sent != received {
			t.Fatalf("transfer: got sha256 %x, want %x", received, sent)
		}
		t.Logf("transferred %d bytes through the tunnel in %v", size, time.Since(start))

		dev, err := wgs[0].Device()
		if err != nil {
			t.Fatal(err)
		}
		if got := dev.Peers[0]; got.LastHandshakeTime.IsZero() || got.TransmitBytes < size {
			t.Errorf("peer state: got handshake %v, %d bytes sent; want a handshake and at least %d bytes", got.LastHandshakeTime, got.TransmitBytes, size)
		}
	})
	if prefix == "" {
		return // skipped or failed before the LAN existed
	}

	// The subtest's cleanup has run: nothing it made may remain.
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	if strings.Contains(string(out), prefix) {
		t.Errorf("namespaces left behind:\n%s", out)
	}
	for _, p := range procs {
		if err := syscall.Kill(p.PID(), 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s pid %d: got kill(0) = %v, want ESRCH", p.Name, p.PID(), err)
		}
	}
	for _, name := range wgNames {
		sock := filepath.Join("/var/run/wireguard", name+".sock")
		if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: got stat error %v, want not-exist", sock, err)
		}
		if _, err := net.InterfaceByName(name); err == nil {
			t.Errorf("interface %s exists in the host namespace", name)
		}
	}
}

// TestSite checks that a site namespace reaches the LAN through its gateway,
// and that the gateway forwards.
func TestSite(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()

	lan := nstest.NewLAN(t, 2)
	gw, other := lan.Hosts[0], lan.Hosts[1]
	site := lan.AddSite(gw)
	if want := netip.MustParsePrefix("10.231.1.0/24"); site.Subnet != want {
		t.Errorf("site subnet: got %v, want %v", site.Subnet, want)
	}
	// Stand in for the tunnel: route the site subnet to the gateway.
	other.MustExec(t, "ip", "route", "add", site.Subnet.String(), "via", gw.Addr.String())
	if err := nstest.Ping(t, site.Host, other.Addr.String()); err != nil {
		t.Fatal(err)
	}
	sent, received, err := nstest.Transfer(t, other, site.Host, site.Addr.String(), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if sent != received {
		t.Fatalf("transfer: got sha256 %x, want %x", received, sent)
	}
}

// TestProc checks output capture, signals and exit status.
func TestProc(t *testing.T) {
	nstest.RequireRoot(t)
	t.Parallel()

	h := nstest.NewLAN(t, 1).Hosts[0]
	p := h.Start(t, "sh", "-c", `ip -o addr show dev eth0; trap "echo term; exit 3" TERM; while :; do sleep 0.05; done`)
	if err := p.Wait(200 * time.Millisecond); err != nstest.ErrRunning {
		t.Fatalf("Wait: got %v, want ErrRunning", err)
	}
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := p.Wait(5 * time.Second); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("Wait: got %v, want exit status 3", err)
	}
	out := p.Output()
	if !strings.Contains(out, h.Addr.String()+"/24") || !strings.Contains(out, "term") {
		t.Errorf("Output: got %q, want eth0's address and \"term\"", out)
	}
}

func ipNet(s string) net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return *n
}
