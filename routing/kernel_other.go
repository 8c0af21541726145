//go:build !linux

package routing

import (
	"errors"
	"fmt"
	"net/netip"
)

// ConfigureInterface sets the MTU, addresses, link state and routes of the
// overlay interface. It is implemented on Linux only; elsewhere it returns an
// error wrapping errors.ErrUnsupported.
func ConfigureInterface(name string, mtu int, addrs []netip.Prefix, routes []netip.Prefix) (undo func() error, err error) {
	return nil, fmt.Errorf("configure %s: %w on this platform", name, errors.ErrUnsupported)
}

// ChangeRoutes adds and deletes routes through the overlay interface. It is
// implemented on Linux only.
func ChangeRoutes(name string, add, del []netip.Prefix) error {
	return fmt.Errorf("change routes %s: %w on this platform", name, errors.ErrUnsupported)
}
