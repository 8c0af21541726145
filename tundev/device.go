package tundev

import (
	"errors"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

const (
	// HeaderRoom is the room in front of every packet in the buffers of
	// Read and Write. The driver puts the virtio-net header in its last
	// bytes; the engine writes its transport header there and seals in
	// place.
	HeaderRoom = 16
	// BufferSize is the length a buffer needs to hold the largest packet
	// (a 64 KiB super-packet) behind HeaderRoom.
	BufferSize = maxIPPacket + HeaderRoom
)

// Device is a TUN device read and written in batches of IP packets.
//
// Read must not be called concurrently with itself; Write is safe for
// concurrent use (writes are serialised), and both may run at once.
type Device interface {
	// Read reads up to len(bufs) packets, each into bufs[i][HeaderRoom:],
	// sets sizes[i] to its length, and returns how many it read. It waits
	// for the first frame only. Each buffer must be BufferSize long and
	// len(sizes) >= len(bufs). A super-packet is split into packets of
	// their own, with their checksums; one that does not fit the rest of
	// the batch is held for the next Read, which may exchange one of bufs
	// for a buffer of the same length that it owns to do so. Frames it
	// cannot use are counted with Options.Drop and skipped, so Read may
	// return 0 with a nil error. After Close it returns an error
	// (os.ErrClosed from the devices this package opens).
	Read(bufs [][]byte, sizes []int) (n int, err error)

	// Write writes each bufs[i][HeaderRoom:] as one IP packet, in order per
	// flow. It may coalesce a flow's packets into a super-packet inside the
	// first one's buffer, up to its capacity, and it uses the header room:
	// the contents of bufs are undefined after Write returns. It returns
	// the first error of the batch; after Close that is an error too.
	Write(bufs [][]byte) error

	// BatchSize is the most packets Read returns and Write is worth
	// giving at once. It does not change.
	BatchSize() int

	// Close closes the underlying TUN device; a blocked Read returns.
	Close() error
}

// Framed is a TUN device that reads and writes one frame at a time, each
// a virtio-net header (VirtioHdrLen bytes, legacy layout, host byte
// order) followed by the packet. The offload reader and writer of this
// package run over it: the Linux TUN file with offloads on, or an
// in-memory fake in tests (tundevtest).
type Framed interface {
	// ReadFrame reads one frame into b and returns its length. With wait
	// set it blocks until a frame comes; otherwise it returns 0 and a nil
	// error when none is queued.
	ReadFrame(b []byte, wait bool) (int, error)
	// WriteFrame writes one frame.
	WriteFrame(frame []byte) error
	// UDPGSO reports whether the device takes UDP super-packets (GSO type
	// UDP_L4, Linux 6.2 and later) in WriteFrame. TCP ones it always takes.
	UDPGSO() bool
	// BatchSize is the batch size of Device.BatchSize.
	BatchSize() int
	// Close closes the device; a blocked ReadFrame returns an error.
	Close() error
}

// Drop names why the driver discarded a frame.
type Drop uint8

const (
	// DropMalformed: the frame's virtio-net header does not match its
	// packet, or the packet's headers are too short for it.
	DropMalformed Drop = iota
	// DropTooBig: a super-packet splits into more packets than a batch
	// holds.
	DropTooBig
)

// Options configure New.
type Options struct {
	// Drop is called once for every frame the driver discards, from the
	// goroutine that called Read. Nil ignores drops.
	Drop func(Drop)
}

// New returns the batch Device over dev. When dev frames its packets with
// a virtio-net header (a Framed device, or on Linux a tun.NativeTun with
// offloads on), New reads and writes the frames itself: it splits the
// super-packets it reads and coalesces the packets it writes. Otherwise it
// uses dev's own Read and Write (other systems, old kernels).
func New(dev tun.Device, opt Options) Device {
	if opt.Drop == nil {
		opt.Drop = func(Drop) {}
	}
	if f, ok := dev.(Framed); ok {
		return newOffload(f, opt)
	}
	if f := framesOf(dev); f != nil {
		return newOffload(f, opt)
	}
	return &plain{dev: dev, drop: opt.Drop}
}

// offload is a Device over a Framed device.
type offload struct {
	Framed
	r *reader

	mu sync.Mutex // guards w
	w  *writer
}

func newOffload(f Framed, opt Options) *offload {
	return &offload{Framed: f, r: newReader(f, opt.Drop), w: newWriter(f)}
}

func (o *offload) Read(bufs [][]byte, sizes []int) (int, error) { return o.r.read(bufs, sizes) }

func (o *offload) Write(bufs [][]byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.w.write(bufs)
}

// plain is a Device over a tun.Device without a virtio-net header, which
// hands over and takes single packets.
type plain struct {
	dev  tun.Device
	drop func(Drop)
}

func (p *plain) Read(bufs [][]byte, sizes []int) (int, error) {
	n, err := p.dev.Read(bufs, sizes, HeaderRoom)
	if errors.Is(err, tun.ErrTooManySegments) {
		p.drop(DropTooBig)
		return n, nil
	}
	return n, err
}

func (p *plain) Write(bufs [][]byte) error {
	_, err := p.dev.Write(bufs, HeaderRoom)
	return err
}

func (p *plain) BatchSize() int { return p.dev.BatchSize() }

func (p *plain) Close() error { return p.dev.Close() }
