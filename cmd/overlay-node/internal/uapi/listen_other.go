//go:build !linux

package uapi

import (
	"errors"
	"runtime"
)

// Listen is only implemented on Linux, where the daemon runs.
func Listen(iface string) (*Server, error) {
	return nil, errors.New("uapi: not supported on " + runtime.GOOS)
}
