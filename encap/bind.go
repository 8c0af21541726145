package encap

import (
	"errors"
	"net/netip"
)

// Bind is the batched UDP transport the engine sends and receives datagrams
// through. Its implementations are the kernel-backed one from [NewBind] and
// encaptest's in-memory pair.
//
// It is our own interface rather than wireguard-go's conn.Bind because the
// datapath wants what conn.Bind hides: a UDP GRO train arrives as one buffer
// with its segment size, so the engine can open each segment straight into
// the buffer it writes to the TUN (conn.Bind copies every segment out
// first), and addresses are netip.AddrPort values (conn.Bind allocates an
// endpoint per datagram).
//
// The contract:
//
//   - Receive: call each ReceiveFunc from its own goroutine with messages
//     whose Buf is at least MaxSegmentSize long. It fills msgs[:n] and
//     reslices each Buf to the bytes received, so restore Buf[:cap(Buf)]
//     before the next call. A message is one datagram, or with UDP GRO a
//     train of datagrams from one source (see [Message.SegmentSize]).
//   - Send: at most BatchSize() datagrams, all to one address, sent in order.
//     Runs of equal-size datagrams (the last of a run may be shorter) are
//     handed to the kernel as one UDP GSO train, gathered from the buffers
//     where they lie: nothing is copied, and the buffers are free again when
//     Send returns.
//   - Close makes every ReceiveFunc return net.ErrClosed; a closed Bind may
//     be opened again, for example on a port change.
type Bind interface {
	// Open binds to port (0 picks one) and returns one ReceiveFunc per
	// socket (IPv4, and IPv6 when the host has it) and the port bound.
	Open(port uint16) (fns []ReceiveFunc, actualPort uint16, err error)
	Close() error
	Send(pkts [][]byte, to netip.AddrPort) error
	// BatchSize is the most messages a ReceiveFunc fills and the most
	// datagrams a Send takes.
	BatchSize() int
}

// ReceiveFunc reads one batch into msgs and returns how many it filled.
type ReceiveFunc func(msgs []Message) (n int, err error)

// Message is one entry of a receive batch.
type Message struct {
	Buf  []byte         // the datagram, or a GRO train of datagrams
	Seg  int            // GRO segment size; 0 when Buf is a single datagram
	From netip.AddrPort // the sender, IPv4 as 4-byte addresses
}

// SegmentSize returns the size of each datagram in m.Buf: every datagram is
// that long but the last, which may be shorter.
func (m *Message) SegmentSize() int {
	if m.Seg <= 0 || m.Seg > len(m.Buf) {
		return len(m.Buf)
	}
	return m.Seg
}

// ErrNoIPv4 and ErrNoIPv6 are returned by Send to an address family the
// bind has no socket for.
var (
	ErrNoIPv4 = errors.New("encap: no IPv4 socket")
	ErrNoIPv6 = errors.New("encap: no IPv6 socket")
)

// Batch and buffer sizes the transport is built around.
const (
	// BatchSize is the number of messages the Linux bind moves per system
	// call, and so the batch size of the whole pipeline. Read the actual
	// value from Bind.BatchSize().
	BatchSize = 128

	// MaxSegmentSize is the size of each receive buffer: the largest UDP
	// payload, which is also the largest train UDP GRO coalesces into a
	// single read.
	MaxSegmentSize = 1<<16 - 1

	// MaxGSOSegments is the most datagrams one UDP GSO train carries (the
	// kernel's UDP_MAX_SEGMENTS has been 64 since GSO was added).
	MaxGSOSegments = 64
)
