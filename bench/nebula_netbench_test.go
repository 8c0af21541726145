//go:build netbench

package bench_test

// Nebula, the third implementation: a different protocol (its own Noise
// handshake, certificates, a stateful firewall) over the same kind of
// userspace TUN-to-UDP path. It is built from the module proxy at
// nebulaVersion, outside this module's go.mod, and run twice per round: at
// its defaults, and with the knobs its example config documents for speed.

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/overlay-node/overlay-node/internal/nstest"
)

const (
	// nebulaModule and nebulaVersion pin the Nebula under test. v1.11.1 is the
	// newest that builds from the module proxy with this Go: v1.11.2 needs a
	// netlink fork the proxy refuses, and v1.12 a newer Go.
	nebulaModule  = "github.com/slackhq/nebula"
	nebulaVersion = "v1.11.1"

	// nebulaBuffer is listen.read_buffer and listen.write_buffer when tuned:
	// the 10 MiB the example config suggests. At the system default the
	// receiver's UDP socket overflows under a single TCP stream.
	nebulaBuffer = 10 << 20
	// nebulaTxQueue is tun.tx_queue when tuned, up from 500, at which the
	// sender's TUN drops under load.
	nebulaTxQueue = 5000
)

// buildNebula returns the paths of nebula and nebula-cert, built on first use.
func buildNebula(t *testing.T) (nebula, cert string) {
	t.Helper()
	return nstest.GoInstall(t, nebulaModule+"/cmd/nebula", nebulaVersion),
		nstest.GoInstall(t, nebulaModule+"/cmd/nebula-cert", nebulaVersion)
}

// startNebulaDefaults and startNebulaTuned start a Nebula pair at its
// defaults and tuned for speed.
func startNebulaDefaults(t *testing.T, p *vethPair) *tunnelPair { return startNebulaPair(t, p, false) }
func startNebulaTuned(t *testing.T, p *vethPair) *tunnelPair    { return startNebulaPair(t, p, true) }

// startNebulaPair makes a CA and a certificate per host with nebula-cert,
// writes each host a config that knows the other by static_host_map, and runs
// nebula in each namespace. Nebula assigns the address, MTU and route from
// its certificate and config itself.
func startNebulaPair(t *testing.T, p *vethPair, tuned bool) *tunnelPair {
	t.Helper()
	nebula, cert := buildNebula(t)
	dir := t.TempDir()
	nebulaCert(t, cert, dir, "ca", "-name", "bench", "-out-crt", "ca.crt", "-out-key", "ca.key")
	hosts := [2]*nstest.Host{p.A, p.B}
	addrs := [2]netip.Prefix{overlayA, overlayB}
	var tp tunnelPair
	for i, h := range hosts {
		name := fmt.Sprintf("h%d", i+1)
		nebulaCert(t, cert, dir, "sign", "-name", name, "-networks", addrs[i].String(),
			"-out-crt", name+".crt", "-out-key", name+".key")
		other := 1 - i
		cfg := nebulaConfig{
			dir:    dir,
			name:   name,
			iface:  nstest.UniqueIfName("neb"),
			peer:   addrs[other].Addr(),
			peerAt: netip.AddrPortFrom(hosts[other].Addr, listenPort),
			tuned:  tuned,
		}
		path := filepath.Join(dir, name+".yml")
		if err := cfg.write(path); err != nil {
			t.Fatal(err)
		}
		tp.procs[i], tp.ifaces[i] = h.Start(t, nebula, "-config", path), cfg.iface
	}
	if err := waitForward(t.Context(), p.A, overlayB.Addr(), forwardTimeout, tp.procs[:]...); err != nil {
		t.Fatalf("nebula pair: %v", err)
	}
	return &tp
}

// nebulaCert runs nebula-cert with args in dir, failing t on error.
func nebulaCert(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nebula-cert %s: %v\n%s", args[0], err, out)
	}
}

// nebulaConfig is one host's Nebula configuration.
type nebulaConfig struct {
	dir    string         // holds ca.crt, NAME.crt and NAME.key
	name   string         // the host's certificate name
	iface  string         // TUN interface name
	peer   netip.Addr     // the other host's overlay address
	peerAt netip.AddrPort // and where it listens on the veth
	tuned  bool           // set the socket buffers and TUN queue
}

// write writes the configuration as YAML. Besides the PKI files it sets only
// what two hosts with no lighthouse need (a fixed listen port and each other
// in static_host_map), what every implementation here shares (the TUN MTU),
// and a firewall that passes everything both ways, as the other
// implementations do; everything else is Nebula's default, unless tuned.
func (c nebulaConfig) write(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	file := func(name string) string { return filepath.Join(c.dir, name) }
	fmt.Fprintf(w, "pki:\n  ca: %q\n  cert: %q\n  key: %q\n", file("ca.crt"), file(c.name+".crt"), file(c.name+".key"))
	fmt.Fprintf(w, "static_host_map:\n  %q: [%q]\n", c.peer.String(), c.peerAt.String())
	fmt.Fprintf(w, "lighthouse:\n  am_lighthouse: false\n")
	fmt.Fprintf(w, "listen:\n  host: 0.0.0.0\n  port: %d\n", listenPort)
	if c.tuned {
		fmt.Fprintf(w, "  read_buffer: %d\n  write_buffer: %d\n", nebulaBuffer, nebulaBuffer)
	}
	fmt.Fprintf(w, "tun:\n  dev: %s\n  mtu: %d\n", c.iface, overlayMTU)
	if c.tuned {
		fmt.Fprintf(w, "  tx_queue: %d\n", nebulaTxQueue)
	}
	fmt.Fprintf(w, "firewall:\n  outbound:\n    - port: any\n      proto: any\n      host: any\n"+
		"  inbound:\n    - port: any\n      proto: any\n      host: any\n")
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
