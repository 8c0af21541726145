package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Host integration of the DNS server: where systemd-resolved runs, the
// node registers itself as the nameserver of ~domain on its interface, so
// that programs on the host resolve mesh names and nothing else changes;
// elsewhere it says how to point a resolver at it.

// resolvedSocket exists while systemd-resolved runs (its varlink socket).
const resolvedSocket = "/run/systemd/resolve/io.systemd.Resolve"

// resolvectlTimeout bounds one resolvectl call.
const resolvectlTimeout = 5 * time.Second

// hostDNS is a registration with systemd-resolved, undone by remove.
type hostDNS struct{ n *node }

// registerHostDNS registers d's domain with systemd-resolved if it runs,
// or logs how to use the node's DNS server. It returns the registration to
// remove at exit, or nil. Failing to register is logged, not fatal: the
// server answers either way.
func registerHostDNS(n *node, d dnsSettings) *hostDNS {
	addrs := make([]string, len(d.listen))
	for i, ap := range d.listen {
		addrs[i] = ap.Addr().String()
	}
	if !resolvedRuns() {
		n.log.Info("dns: no systemd-resolved on this host; to resolve mesh names here, point a resolver at the node for the domain, e.g. 'nameserver "+addrs[0]+"' in /etc/resolv.conf",
			"domain", d.domain, "nameservers", strings.Join(addrs, " "))
		return nil
	}
	if err := resolvectl(append([]string{"dns", n.iface}, addrs...)...); err != nil {
		n.log.Warn("dns: could not register with systemd-resolved", "err", err)
		return nil
	}
	if err := resolvectl("domain", n.iface, "~"+d.domain); err != nil {
		n.log.Warn("dns: could not register the domain with systemd-resolved", "err", err)
		resolvectl("revert", n.iface) //nolint:errcheck // logged above
		return nil
	}
	n.log.Info("dns: registered with systemd-resolved", "domain", "~"+d.domain, "interface", n.iface, "nameservers", strings.Join(addrs, " "))
	return &hostDNS{n: n}
}

// remove undoes the registration.
func (h *hostDNS) remove() {
	if err := resolvectl("revert", h.n.iface); err != nil {
		h.n.log.Warn("dns: could not remove the registration with systemd-resolved", "err", err)
	}
}

// resolvedRuns reports whether systemd-resolved runs and resolvectl can
// talk to it.
func resolvedRuns() bool {
	if _, err := exec.LookPath("resolvectl"); err != nil {
		return false
	}
	_, err := os.Stat(resolvedSocket)
	return err == nil
}

func resolvectl(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), resolvectlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "resolvectl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("resolvectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
