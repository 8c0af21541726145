package tundevtest

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/overlay-node/overlay-node/tundev"
)

// Frame is one frame the driver wrote: its virtio-net header and its
// packet, which is a super-packet when Hdr.GSOType is not GSONone.
type Frame struct {
	Hdr    VirtioHdr
	Packet []byte
}

// Config sets up a TUN.
type Config struct {
	MTU   int
	Batch int // BatchSize
	// UDPGSO makes the device take UDP super-packets, as Linux 6.2 and
	// later do; without it the driver coalesces only TCP.
	UDPGSO bool
}

// TUN is an in-memory TUN device with offloads on. Frames given to Inject
// and InjectFrame come out of ReadFrame as if the kernel routed them into
// the interface; the frames the driver writes are copied to Outbound. Its
// queues are bounded: Inject blocks while the device is not reading, and
// writes beyond Outbound's capacity are dropped and counted in Dropped.
//
// TUN is a tundev.Framed, so tundev.New runs the offload reader and
// writer over it; it is also a tun.Device whose Read and Write move
// single packets without a header, and Plain hides the frames from
// tundev.New to test its fallback for such devices.
type TUN struct {
	inbound chan []byte // frames
	// Outbound receives a copy of every frame written.
	Outbound chan Frame
	events   chan tun.Event
	cfg      Config

	mu      sync.Mutex
	closed  bool
	done    chan struct{}
	dropped int

	discard atomic.Bool // Write counts and forgets, for allocation tests
	written atomic.Uint64
	frames  atomic.Uint64
}

// NewTUN returns a TUN set up by cfg.
func NewTUN(cfg Config) *TUN {
	return &TUN{
		inbound:  make(chan []byte, 1024),
		Outbound: make(chan Frame, 4096),
		events:   make(chan tun.Event),
		cfg:      cfg,
		done:     make(chan struct{}),
	}
}

// SetDiscard makes writes drop frames after counting them, so tests can
// measure the driver's and engine's own allocations.
func (t *TUN) SetDiscard(on bool) { t.discard.Store(on) }

// Written returns how many packets the written frames carried, counting
// every segment of a super-packet.
func (t *TUN) Written() uint64 { return t.written.Load() }

// Frames returns how many frames were written.
func (t *TUN) Frames() uint64 { return t.frames.Load() }

// Dropped returns how many written frames did not fit in Outbound.
func (t *TUN) Dropped() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dropped
}

// Inject queues a copy of the IP packet pkt, with a header that claims
// nothing, as the kernel hands over a packet it checksummed itself.
func (t *TUN) Inject(pkt []byte) { t.InjectFrame(VirtioHdr{}, pkt) }

// InjectFrame queues a copy of pkt behind header h: a super-packet with a
// GSO type and size, or a packet whose checksum is partial (FlagNeedsCsum
// with the pseudo-header sum in the checksum field).
func (t *TUN) InjectFrame(h VirtioHdr, pkt []byte) {
	frame := make([]byte, VirtioHdrLen+len(pkt))
	h.put(frame)
	copy(frame[VirtioHdrLen:], pkt)
	select {
	case t.inbound <- frame:
	case <-t.done:
	}
}

// ReadFrame copies the next queued frame into b, waiting for one if wait
// is set. A frame longer than b is cut short, as a read from the TUN file
// would be.
func (t *TUN) ReadFrame(b []byte, wait bool) (int, error) {
	if !wait {
		select {
		case f := <-t.inbound:
			return copy(b, f), nil
		case <-t.done:
			return 0, os.ErrClosed
		default:
			return 0, nil
		}
	}
	select {
	case f := <-t.inbound:
		return copy(b, f), nil
	case <-t.done:
		return 0, os.ErrClosed
	}
}

// WriteFrame copies frame to Outbound, unless discarding.
func (t *TUN) WriteFrame(frame []byte) error {
	if len(frame) < VirtioHdrLen {
		return errors.New("tundevtest: frame shorter than its virtio-net header")
	}
	select {
	case <-t.done:
		return os.ErrClosed
	default:
	}
	h, pkt := getVirtioHdr(frame), frame[VirtioHdrLen:]
	t.frames.Add(1)
	t.written.Add(uint64(h.Segments(pkt)))
	if t.discard.Load() {
		return nil
	}
	select {
	case t.Outbound <- Frame{Hdr: h, Packet: append([]byte(nil), pkt...)}:
	default:
		t.mu.Lock()
		t.dropped++
		t.mu.Unlock()
	}
	return nil
}

// UDPGSO reports Config.UDPGSO.
func (t *TUN) UDPGSO() bool { return t.cfg.UDPGSO }

// errFramed: a device without the header never hands over super-packets.
var errFramed = errors.New("tundevtest: a frame with offloads read through the headerless tun.Device Read")

// Read reads up to len(bufs) queued packets at offset, without their
// headers, waiting for the first; it is the device seen without its
// virtio-net header, and fails on a frame that needs one.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n := 0
	for n < len(bufs) {
		var f []byte
		if n == 0 {
			select {
			case f = <-t.inbound:
			case <-t.done:
				return 0, os.ErrClosed
			}
		} else {
			select {
			case f = <-t.inbound:
			default:
				return n, nil
			}
		}
		if getVirtioHdr(f) != (VirtioHdr{}) {
			return n, errFramed
		}
		sizes[n] = copy(bufs[n][offset:], f[VirtioHdrLen:])
		n++
	}
	return n, nil
}

// Write writes each bufs[i][offset:] as a frame with a header that claims
// nothing.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		frame := append(make([]byte, VirtioHdrLen), b[offset:]...)
		if err := t.WriteFrame(frame); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

// File returns nil: there is no descriptor.
func (t *TUN) File() *os.File { return nil }

// MTU returns Config.MTU.
func (t *TUN) MTU() (int, error) { return t.cfg.MTU, nil }

// Name returns a fixed name.
func (t *TUN) Name() (string, error) { return "faketun", nil }

// Events returns a channel that never fires before Close.
func (t *TUN) Events() <-chan tun.Event { return t.events }

// BatchSize returns Config.Batch.
func (t *TUN) BatchSize() int { return t.cfg.Batch }

// Close unblocks reads and Inject; later reads and writes fail with
// os.ErrClosed.
func (t *TUN) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.done)
		close(t.events)
	}
	return nil
}

// Plain returns t as a tun.Device without its frames, the kind of device
// tundev.New falls back to its Read and Write for.
func (t *TUN) Plain() tun.Device { return plain{t} }

type plain struct{ tun.Device }

var (
	_ tun.Device    = (*TUN)(nil)
	_ tundev.Framed = (*TUN)(nil)
)
