// Package nstest builds throwaway network topologies out of Linux network
// namespaces, and runs real processes inside them, for end-to-end tests and the
// bench harness.
//
// It owns everything a namespace test creates: the namespaces and the veth pairs
// and bridges inside them, the processes started in them (overlay-node,
// wireguard-go), and the binaries built for them. A test asks for a [LAN] of
// host namespaces joined by a bridge (or, for benchmarks, a [NewLink] of two
// joined by one veth pair), optionally hangs a [Site] subnet off a host, starts processes with [Host.Start] or [StartWireGuardGo], and checks
// the result with [Ping] and [Transfer].
//
// Isolation. Every namespace is named nst-PID-N-ROLE, where PID is the test
// binary's process ID and N counts LANs within it, so parallel tests and
// concurrent test binaries never clash. Links are created directly inside
// those namespaces and never appear in the host's namespace, so their short
// fixed names (eth0, br0) cannot clash either. The only host-global names are
// wireguard-go's UAPI sockets, which is why its interface names come from
// [UniqueIfName]. Addresses are only ever assigned inside the namespaces.
//
// Cleanup. Everything is undone by t.Cleanup, in reverse order of creation:
// processes are stopped by PID and reaped before their namespace is deleted.
// Deleting a namespace deletes every link in it. Because t.Cleanup does not run
// when the test binary panics on -timeout, a watchdog tears everything down
// shortly before that deadline. Processes are also started with a parent-death
// signal, and namespaces and build directories left behind by a test binary
// that died anyway are swept by the next one.
//
// All of this needs root and the ip command (iproute2); [RequireRoot] skips the
// test otherwise. The topology functions call it themselves.
package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
)

// namePrefix starts the name of every namespace and build directory this
// package creates, so that the sweeper only ever touches its own leftovers.
const namePrefix = "nst-"

// ifNameMax is the longest Linux interface name (IFNAMSIZ minus the NUL).
const ifNameMax = 15

// RequireRoot skips t, with a single line saying why, unless the test runs as
// root with the ip command available, and not in -short mode. Namespace tests
// are slow and need privileges, so -short (the unit-test run) leaves them out.
func RequireRoot(t testing.TB) {
	t.Helper()
	switch {
	case os.Geteuid() != 0:
		t.Skip("namespace tests need root; skipping")
	case testing.Short():
		t.Skip("namespace tests do not run in -short mode; skipping")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("namespace tests need the ip command (iproute2); skipping")
	}
}

var ifNames atomic.Int64

// UniqueIfName returns an interface name that starts with base and is unique
// among all running test binaries, for interfaces whose name is global even
// though they live in a namespace, such as wireguard-go's (its UAPI socket is
// /var/run/wireguard/NAME.sock). base is cut short if the result would exceed
// the 15-byte limit on interface names.
func UniqueIfName(base string) string {
	suffix := strconv.FormatInt(int64(os.Getpid()), 36) + "x" + strconv.FormatInt(ifNames.Add(1), 36)
	if len(base)+len(suffix) > ifNameMax {
		base = base[:max(0, ifNameMax-len(suffix))]
	}
	return base + suffix
}

var lans atomic.Int64

// newPrefix returns the namespace-name prefix for a new LAN: nst-PID-N-.
func newPrefix() string {
	return fmt.Sprintf("%s%d-%d-", namePrefix, os.Getpid(), lans.Add(1))
}
