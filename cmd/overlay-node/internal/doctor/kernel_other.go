//go:build !linux

package doctor

import (
	"context"
	"errors"
	"net/netip"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
)

// kernelChecks needs Linux: elsewhere it says so in one line.
func kernelChecks(_ context.Context, r *Report, _ *control.Status) {
	r.add("kernel", Warn, "the interface, route, forwarding, firewall and port checks need Linux", "")
}

func underlayMTU(netip.Addr) (string, int, error) {
	return "", 0, errors.New("needs Linux")
}
