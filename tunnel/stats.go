package tunnel

import (
	"sync/atomic"
)

// DropReason names why a packet was discarded. Every drop increments exactly
// one counter, so operators can tell a misconfiguration from an attack.
type DropReason uint8

// Drop reasons. Their String forms are stable: metrics and status use them.
const (
	DropNoRoute          DropReason = iota // TUN packet to an address no peer owns
	DropNoSession                          // transport packet for an unknown receiver index
	DropNoEndpoint                         // peer has no known endpoint to send to
	DropReplay                             // counter already seen or behind the window
	DropDecrypt                            // authentication failed
	DropSourceNotAllowed                   // inner source does not route back to the sender
	DropMalformed                          // bad outer or inner framing
	DropBadMAC1                            // handshake message with a bad MAC1
	DropRateLimited                        // handshake over the per-source rate, or a cookie reply over its caps, while under load
	DropHandshakeInvalid                   // handshake failed to decrypt, unknown key or stale timestamp
	DropQueueFull                          // a bounded queue was full
	DropTooBig                             // packet larger than the MTU allows
	DropExpired                            // keys too old or counter exhausted
	DropHandshakeTimeout                   // staged packets discarded when a handshake gave up
	DropSendFailed                         // the UDP socket refused the datagram
	DropPolicy                             // inbound packet the firewall denied
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	DropNoRoute:          "no_route",
	DropNoSession:        "no_session",
	DropNoEndpoint:       "no_endpoint",
	DropReplay:           "replay",
	DropDecrypt:          "decrypt_failed",
	DropSourceNotAllowed: "source_not_allowed",
	DropMalformed:        "malformed",
	DropBadMAC1:          "bad_mac1",
	DropRateLimited:      "rate_limited",
	DropHandshakeInvalid: "handshake_invalid",
	DropQueueFull:        "queue_full",
	DropTooBig:           "too_big",
	DropExpired:          "keys_expired",
	DropHandshakeTimeout: "handshake_timeout",
	DropSendFailed:       "send_failed",
	DropPolicy:           "policy",
}

// String returns the reason's stable snake_case name.
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// DropReasons lists every reason in order. It is an array, so the
// collectors that range over it per peer at every scrape allocate nothing.
func DropReasons() [numDropReasons]DropReason {
	var rs [numDropReasons]DropReason
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// dropCounters is one atomic counter per reason.
type dropCounters [numDropReasons]atomic.Uint64

func (c *dropCounters) add(r DropReason, n uint64) { c[r].Add(n) }

func (c *dropCounters) snapshot() (out [numDropReasons]uint64) {
	for i := range c {
		out[i] = c[i].Load()
	}
	return out
}

// Histogram buckets for batch sizes: powers of two up to encap.BatchSize.
var batchBuckets = [...]int{1, 2, 4, 8, 16, 32, 64, 128}

// batchHistogram counts batch sizes without locks.
type batchHistogram struct {
	buckets [len(batchBuckets) + 1]atomic.Uint64
	sum     atomic.Uint64
}

func (h *batchHistogram) observe(n int) {
	i := 0
	for i < len(batchBuckets) && n > batchBuckets[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(uint64(n))
}

// BatchStats is a snapshot of a batch-size histogram: Counts[i] is the
// number of batches of size <= BatchBuckets()[i] (not cumulative), with one
// extra overflow bucket at the end.
type BatchStats struct {
	Counts []uint64
	Sum    uint64
}

// BatchBuckets returns the upper bounds of the batch histogram buckets.
func BatchBuckets() []int { return batchBuckets[:] }

func (h *batchHistogram) snapshot() BatchStats {
	s := BatchStats{Counts: make([]uint64, len(h.buckets)), Sum: h.sum.Load()}
	for i := range h.buckets {
		s.Counts[i] = h.buckets[i].Load()
	}
	return s
}

// peerCounters are a peer's traffic counters, updated atomically on the
// packet path and read at scrape time.
type peerCounters struct {
	rxBytes, rxPackets   atomic.Uint64
	txBytes, txPackets   atomic.Uint64
	handshakesCompleted  atomic.Uint64
	handshakesFailed     atomic.Uint64
	lastHandshakeUnixNan atomic.Int64
	unansweredSince      atomic.Int64 // unix nanoseconds; 0 while the peer answers (reachability.go)
	probedAt             atomic.Int64 // unix nanoseconds of the last Probe that started a handshake
	// unansweredInitiations counts initiations sent since the last
	// handshake completed: what tells a peer that does not answer.
	unansweredInitiations atomic.Uint64
	// drops is made on the peer's first drop: most peers of a large mesh
	// never drop, and the array is a sixth of an idle peer.
	drops atomic.Pointer[dropCounters]
}
