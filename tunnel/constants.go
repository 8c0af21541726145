package tunnel

import (
	"time"

	"github.com/overlay-node/overlay-node/tundev"
)

// Specification constants, named as in the WireGuard paper (section 6.1).
const (
	RekeyAfterTime        = 120 * time.Second
	RejectAfterTime       = 180 * time.Second
	RekeyAttemptTime      = 90 * time.Second
	RekeyTimeout          = 5 * time.Second
	KeepaliveTimeout      = 10 * time.Second
	RekeyTimeoutJitterMax = 333 * time.Millisecond
)

// Implementation constants.
const (
	// BufferSize holds the largest TUN read or write (a 64 KiB
	// super-packet), with the header room in front.
	BufferSize = tundev.BufferSize
	// HeaderRoom is the space reserved in front of every packet so the
	// transport header is written and the payload sealed in place; the
	// TUN driver reads packets behind it and writes them from behind it.
	HeaderRoom = tundev.HeaderRoom
	// MaxStagedPackets bounds the packets a peer holds while its handshake
	// completes; older ones are dropped first, like wireguard-go.
	MaxStagedPackets = 128
	// HandshakeQueueSize bounds the handshake messages awaiting the
	// handshake goroutine; beyond an eighth of it the node is under load.
	HandshakeQueueSize = 1024
	// CookieReplyRate caps the cookie replies a node sends per second to
	// sources that are not a peer's configured endpoint, in bursts of a
	// tenth of it; beyond it a handshake without MAC2 is dropped unanswered
	// and counted as rate_limited. A legitimate initiator denied a reply
	// retries after RekeyTimeout.
	CookieReplyRate = 1000
	// UnderLoadAfter is how long the node stays under load once detected.
	UnderLoadAfter = time.Second
	// ParallelMinPackets is the batch size from which crypto is split
	// across cores; below it the hand-off costs more than it saves.
	ParallelMinPackets = 8
)
