// Package statstest provides in-memory stand-ins for the engine's
// statistics, for testing the packages that read them: the control
// socket, the metrics collector and the UAPI socket.
package statstest

import (
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/tunnel"
)

// Source returns a fixed snapshot, as *tunnel.Device returns a live one.
type Source struct{ Stats tunnel.Stats }

// Snapshot returns s.Stats.
func (s Source) Snapshot() tunnel.Stats { return s.Stats }

// Key returns the public key whose every byte is b: distinct, readable
// keys for fixtures.
func Key(b byte) crypto.PublicKey {
	var k crypto.PublicKey
	for i := range k {
		k[i] = b
	}
	return k
}
