// Package sdnotify tells systemd how a Type=notify service is doing: the
// sd_notify protocol, one datagram of newline-separated VAR=value lines to
// the unix socket named by $NOTIFY_SOCKET (a path, or an abstract socket
// when it starts with '@'). Outside systemd the variable is unset and
// every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Send sends state, e.g. "READY=1", to the service manager. It does
// nothing, and returns nil, when $NOTIFY_SOCKET is unset.
func Send(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if strings.HasPrefix(path, "@") {
		path = "\x00" + path[1:] // the abstract namespace
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Ready says the service is up: for overlay-node, forwarding.
func Ready(status string) error { return Send("READY=1\nSTATUS=" + status) }

// Reloading says a reload began. systemd 253 and later want the
// CLOCK_MONOTONIC time with it, to tell this reload from an earlier one.
func Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return Send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
}

// Stopping says the service is shutting down.
func Stopping() error { return Send("STOPPING=1") }
