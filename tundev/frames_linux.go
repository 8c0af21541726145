package tundev

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// fileFrames is the Linux TUN file behind its virtio-net header, read and
// written directly; the tun.NativeTun that opened it still owns it (its
// offload negotiation, events and Close).
type fileFrames struct {
	nt  *tun.NativeTun
	raw syscall.RawConn
	uso bool // the device takes UDP GSO (Linux 6.2 and later)

	// The read and the write in progress: one goroutine reads, and the
	// offload writer's lock serialises writes.
	rd, wr rawCall
}

// framesOf finds the TUN's file when the device reads and writes with a
// virtio-net header (wireguard-go's NativeTun turns it on with TSO, and
// then batches). The offload flags are set again, to the same value
// NativeTun asks for first, because that is the only way to learn whether
// the kernel took UDP GSO.
func framesOf(dev tun.Device) Framed {
	nt, ok := dev.(*tun.NativeTun)
	if !ok || nt.BatchSize() <= 1 {
		return nil
	}
	return newFileFrames(nt, nt.File())
}

func newFileFrames(nt *tun.NativeTun, f *os.File) Framed {
	raw, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	ff := &fileFrames{nt: nt, raw: raw}
	ff.rd.init(unix.SYS_READ)
	ff.wr.init(unix.SYS_WRITE)
	ff.wr.park = true
	raw.Control(func(fd uintptr) {
		const tcp = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		ff.uso = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tcp|unix.TUN_F_USO4|unix.TUN_F_USO6) == nil
	})
	return ff
}

// rawCall is one read or write system call on a non-blocking file, made
// through the file's RawConn so that it parks in Go's poller when the
// file is not ready.
//
// It is a raw system call, which Go's scheduler does not see. The file is
// non-blocking, so the call cannot block, and skipping the scheduler's
// system-call entry keeps an idle node's first packet from waking Go's
// sysmon thread, which then competes with the packet for a CPU: about five
// extra thread wake-ups per ping through two nodes.
type rawCall struct {
	trap uintptr
	park bool // wait for the file to be ready; otherwise EAGAIN returns
	buf  []byte
	n    int
	err  error
	do   func(fd uintptr) bool // c.once, bound once so a call allocates nothing
}

func (c *rawCall) init(trap uintptr) {
	c.trap = trap
	c.do = c.once
}

// once makes the call and reports whether it is done: false parks until
// fd is ready.
func (c *rawCall) once(fd uintptr) bool {
	n, _, errno := unix.RawSyscall(c.trap, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.buf))), uintptr(len(c.buf)))
	c.n, c.err = int(n), nil
	if errno != 0 {
		c.n, c.err = 0, errno
	}
	return errno != unix.EAGAIN || !c.park
}

func (f *fileFrames) ReadFrame(b []byte, wait bool) (int, error) {
	f.rd.buf, f.rd.park = b, wait
	err := f.raw.Read(f.rd.do)
	f.rd.buf = nil
	if err != nil {
		return 0, err
	}
	if f.rd.err == unix.EAGAIN {
		return 0, nil
	}
	return f.rd.n, f.rd.err
}

func (f *fileFrames) WriteFrame(frame []byte) error {
	f.wr.buf = frame
	err := f.raw.Write(f.wr.do)
	f.wr.buf = nil
	if err != nil {
		return err
	}
	return f.wr.err
}

func (f *fileFrames) UDPGSO() bool { return f.uso }

func (f *fileFrames) BatchSize() int { return f.nt.BatchSize() }

func (f *fileFrames) Close() error { return f.nt.Close() }
