package tundev

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// fileFrames is the Linux TUN file behind its virtio-net header, read and
// written directly; the tun.NativeTun that opened it still owns it (its
// offload negotiation, events and Close).
type fileFrames struct {
	nt   *tun.NativeTun
	file *os.File
	raw  syscall.RawConn
	uso  bool // the device takes UDP GSO (Linux 6.2 and later)

	// One non-blocking read: its buffer and result, and the function that
	// does it, bound once so a read allocates nothing.
	nbBuf  []byte
	nbN    int
	nbErr  error
	nbRead func(fd uintptr) bool
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
	ff := &fileFrames{nt: nt, file: f, raw: raw}
	ff.nbRead = ff.readNonBlocking
	raw.Control(func(fd uintptr) {
		const tcp = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		ff.uso = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tcp|unix.TUN_F_USO4|unix.TUN_F_USO6) == nil
	})
	return ff
}

func (f *fileFrames) readNonBlocking(fd uintptr) bool {
	f.nbN, f.nbErr = unix.Read(int(fd), f.nbBuf)
	return true // never park: EAGAIN just ends the batch
}

func (f *fileFrames) ReadFrame(b []byte, wait bool) (int, error) {
	if wait {
		return f.file.Read(b)
	}
	f.nbBuf = b
	if err := f.raw.Read(f.nbRead); err != nil {
		return 0, err
	}
	f.nbBuf = nil
	if f.nbErr == unix.EAGAIN {
		return 0, nil
	}
	return f.nbN, f.nbErr
}

func (f *fileFrames) WriteFrame(frame []byte) error {
	_, err := f.file.Write(frame)
	return err
}

func (f *fileFrames) UDPGSO() bool { return f.uso }

func (f *fileFrames) BatchSize() int { return f.nt.BatchSize() }

func (f *fileFrames) Close() error { return f.nt.Close() }
