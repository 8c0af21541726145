package uapi

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/statstest"
	"github.com/overlay-node/overlay-node/tunnel"
)

func testStats() tunnel.Stats {
	return tunnel.Stats{
		PublicKey:  statstest.Key(1),
		ListenPort: 51820,
		Peers: []tunnel.PeerStats{
			{
				Name:      "b",
				PublicKey: statstest.Key(0xab),
				Endpoint:  netip.MustParseAddrPort("192.168.100.2:51820"),
				AllowedIPs: []netip.Prefix{
					netip.MustParsePrefix("10.100.0.2/32"),
					netip.MustParsePrefix("172.20.1.0/24"),
				},
				PersistentKeepalive: 25 * time.Second,
				RxBytes:             1234,
				TxBytes:             5678,
				LastHandshake:       time.Unix(1700000000, 123456789),
			},
			{
				Name:       "c",
				PublicKey:  statstest.Key(0xcd),
				Endpoint:   netip.MustParseAddrPort("[2001:db8::3]:51821"),
				AllowedIPs: []netip.Prefix{netip.MustParsePrefix("fd00::3/128")},
			},
		},
	}
}

// The answer is wireguard-go's format, field for field, without keys
// other than the peers' public keys.
func TestWriteGet(t *testing.T) {
	hexb := hex.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	hexc := hex.EncodeToString(bytes.Repeat([]byte{0xcd}, 32))
	want := "listen_port=51820\n" +
		"public_key=" + hexb + "\n" +
		"protocol_version=1\n" +
		"endpoint=192.168.100.2:51820\n" +
		"last_handshake_time_sec=1700000000\n" +
		"last_handshake_time_nsec=123456789\n" +
		"tx_bytes=5678\n" +
		"rx_bytes=1234\n" +
		"persistent_keepalive_interval=25\n" +
		"allowed_ip=10.100.0.2/32\n" +
		"allowed_ip=172.20.1.0/24\n" +
		"public_key=" + hexc + "\n" +
		"protocol_version=1\n" +
		"endpoint=[2001:db8::3]:51821\n" +
		"last_handshake_time_sec=0\n" +
		"last_handshake_time_nsec=0\n" +
		"tx_bytes=0\n" +
		"rx_bytes=0\n" +
		"persistent_keepalive_interval=0\n" +
		"allowed_ip=fd00::3/128\n" +
		"errno=0\n\n"
	var b strings.Builder
	if err := WriteGet(&b, testStats()); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != want {
		t.Errorf("get answer:\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// A peer with no endpoint has no endpoint line, as in wireguard-go: wg
// rejects an empty one.
func TestWriteGetNoEndpoint(t *testing.T) {
	st := tunnel.Stats{Peers: []tunnel.PeerStats{{Name: "x", PublicKey: statstest.Key(9)}}}
	var b strings.Builder
	if err := WriteGet(&b, st); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "endpoint=") || strings.Contains(b.String(), "listen_port=") {
		t.Errorf("got %q, want no endpoint and no listen_port lines", b.String())
	}
}

// No key material but the peers' public keys is ever written.
func TestWriteGetNoSecrets(t *testing.T) {
	var b strings.Builder
	WriteGet(&b, testStats())
	for _, key := range []string{"private_key=", "preshared_key="} {
		if strings.Contains(b.String(), key) {
			t.Errorf("answer contains %q:\n%s", key, b.String())
		}
	}
}

// wgParse checks an answer the way wg's userspace_get_device reads it:
// every line key=value, numbers only digits, ended by errno and a blank
// line. It returns the errno.
func wgParse(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	numeric := map[string]bool{
		"listen_port": true, "protocol_version": true, "last_handshake_time_sec": true,
		"last_handshake_time_nsec": true, "tx_bytes": true, "rx_bytes": true,
		"persistent_keepalive_interval": true,
	}
	errno := ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("answer ends without a blank line: %v", err)
		}
		if line == "\n" {
			if errno == "" {
				t.Fatal("answer has no errno")
			}
			return errno
		}
		k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok || strings.Contains(v, "=") {
			t.Fatalf("bad line %q", line)
		}
		if numeric[k] && strings.Trim(v, "0123456789") != "" {
			t.Fatalf("%s=%q: not a number", k, v)
		}
		if k == "errno" {
			errno = v
		}
	}
}

func startTestServer(t *testing.T) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(ln, path)
	st := testStats()
	s.Serve(statstest.Source{Stats: st}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { s.Close() })
	return s
}

// One connection may ask several times, as wg does; set is refused with
// EPERM after its body is read; an unknown operation ends the connection.
func TestServerOperations(t *testing.T) {
	s := startTestServer(t)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)

	for i := range 2 {
		io.WriteString(c, "get=1\n\n")
		if got := wgParse(t, r); got != "0" {
			t.Errorf("get #%d: errno=%s, want 0", i+1, got)
		}
	}

	io.WriteString(c, "set=1\npublic_key="+strings.Repeat("ab", 32)+"\nremove=true\n\n")
	if got := wgParse(t, r); got != "-1" {
		t.Errorf("set: errno=%s, want -1 (EPERM)", got)
	}
	io.WriteString(c, "get=1\n\n")
	if got := wgParse(t, r); got != "0" {
		t.Errorf("get after set: errno=%s, want 0", got)
	}

	io.WriteString(c, "bogus=1\n\n")
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("after an unknown operation: got %v, want the connection closed", err)
	}
}

// Close ends open connections and stops accepting.
func TestServerClose(t *testing.T) {
	s := startTestServer(t)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(10 * time.Millisecond) // let the server accept it
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with a client connected")
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after Close: got %v, want EOF", err)
	}
	if _, err := net.Dial("unix", s.Path()); err == nil {
		t.Error("socket still accepts after Close")
	}
}
