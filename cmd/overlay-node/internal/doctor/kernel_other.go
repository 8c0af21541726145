//go:build !linux

package doctor

import (
	"context"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
)

// kernelChecks needs Linux: elsewhere it says so in one line.
func kernelChecks(_ context.Context, r *Report, _ *control.Status) {
	r.add("kernel", Warn, "the interface, route, forwarding, firewall and port checks need Linux", "")
}
