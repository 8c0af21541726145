package encap

import "golang.zx2c4.com/wireguard/conn"

// Bind is the batched UDP transport the engine sends and receives datagrams
// through. It is wireguard-go's conn.Bind rather than a type of our own so
// that its implementations (the kernel-backed one from [NewBind] and
// encaptest's in-memory pair) are interchangeable with wireguard-go's.
//
// The contract the engine must keep, beyond conn.Bind's doc comment:
//
//   - Receive: call each ReceiveFunc from its own goroutine with exactly
//     BatchSize() buffers (and sizes and endpoint slices at least that long),
//     each MaxSegmentSize bytes long. With UDP GRO the standard bind reads
//     coalesced trains of up to 64 KiB into the last buffers of the batch and
//     splits them into the earlier ones; fewer or smaller buffers silently
//     truncate or misplace datagrams. Entries whose size is 0 are to be
//     skipped. The returned endpoints are new values the engine may keep.
//   - Send: at most BatchSize() datagrams, all to one endpoint. With UDP GSO
//     the standard bind coalesces consecutive datagrams of equal size by
//     appending them to bufs[0] within its capacity, so every buffer passed to
//     Send must own the spare capacity behind it: a slice that shares its
//     backing array with the next buffer must be capped (b[:n:n]), or its
//     neighbour gets overwritten. Only the last datagram of a run may be
//     shorter than the others; sending runs of equal-size datagrams is what
//     makes GSO pay.
//   - Close makes every ReceiveFunc return net.ErrClosed; a closed Bind may be
//     opened again, for example on a port change.
type Bind = conn.Bind

// Endpoint is the address of a remote peer as a Bind sees it. DstToBytes is
// the source address that cookie MACs are bound to.
type Endpoint = conn.Endpoint

// ReceiveFunc reads one batch of datagrams; see [Bind].
type ReceiveFunc = conn.ReceiveFunc

// Batch and buffer sizes the transport is built around.
const (
	// BatchSize is the number of datagrams the standard bind moves per
	// system call on Linux, and so the batch size of the whole pipeline.
	// Read the actual value from Bind.BatchSize(): it is 1 on platforms
	// without recvmmsg/sendmmsg.
	BatchSize = conn.IdealBatchSize

	// MaxSegmentSize is the size of each receive buffer: the largest UDP
	// payload, which is also the largest train UDP GRO coalesces into a
	// single read before the bind splits it.
	MaxSegmentSize = 1<<16 - 1
)

// NewBind returns the standard UDP bind: one IPv4 and one IPv6 socket on the
// same port, read and written with recvmmsg/sendmmsg, with UDP GSO and GRO
// when the kernel supports them (it falls back by itself when a NIC refuses
// GSO, returning a conn.ErrUDPGSODisabled once).
//
// Socket buffers: the standard bind already asks for 7 MiB SO_RCVBUF and
// SO_SNDBUF on every socket, and on Linux repeats that with SO_RCVBUFFORCE and
// SO_SNDBUFFORCE, which go past net.core.rmem_max/wmem_max when the process
// has CAP_NET_ADMIN (as the daemon does, to create its TUN device). Without
// that capability the kernel clamps silently to rmem_max/wmem_max, which costs
// throughput on fast or long links but not correctness, so there is nothing
// more to set here; raise the sysctls for unprivileged use.
func NewBind() Bind {
	return conn.NewStdNetBind()
}
