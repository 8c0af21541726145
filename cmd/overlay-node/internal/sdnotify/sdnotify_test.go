package sdnotify

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a datagram socket at name ("@..." is abstract) and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := name
	if strings.HasPrefix(name, "@") {
		addr = "\x00" + name[1:]
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestSend(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		fmt.Sprintf("@overlay-node-test-%d", time.Now().UnixNano()),
	} {
		c := listen(t, name)
		if err := Ready("forwarding"); err != nil {
			t.Fatal(err)
		}
		if got := read(t, c); got != "READY=1\nSTATUS=forwarding" {
			t.Errorf("%s: got %q, want READY=1 and STATUS", name, got)
		}
		if err := Reloading(); err != nil {
			t.Fatal(err)
		}
		got := read(t, c)
		usec, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC=")
		if n, err := strconv.ParseUint(usec, 10, 64); !ok || err != nil || n == 0 {
			t.Errorf("%s: got %q, want RELOADING=1 and MONOTONIC_USEC", name, got)
		}
		if err := Stopping(); err != nil {
			t.Fatal(err)
		}
		if got := read(t, c); got != "STOPPING=1" {
			t.Errorf("%s: got %q, want STOPPING=1", name, got)
		}
	}
}

// Outside systemd there is nothing to tell.
func TestUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Ready("x"); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

// A socket that is gone is an error the caller can log.
func TestGone(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
	if err := Stopping(); err == nil {
		t.Error("got nil, want an error")
	}
}
