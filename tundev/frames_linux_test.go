package tundev

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// seqpacketFiles stands in for the TUN file: a SOCK_SEQPACKET socket
// keeps frame boundaries, and the test writes frames into its other end.
// tun is non-blocking, as the TUN file is.
func seqpacketFiles(t *testing.T) (tun, other *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	tun, other = os.NewFile(uintptr(fds[0]), "tun"), os.NewFile(uintptr(fds[1]), "writer")
	t.Cleanup(func() { tun.Close(); other.Close() })
	return tun, other
}

// seqpacketTUN is the offload reader over seqpacketFiles.
func seqpacketTUN(t *testing.T) (*reader, *[2]int, *os.File) {
	t.Helper()
	f, w := seqpacketFiles(t)
	drops := new([2]int)
	r := newReader(newFileFrames(nil, f), func(d Drop) { drops[d]++ })
	return r, drops, w
}

func writeFrame(t *testing.T, w *os.File, h virtioHdr, pkt []byte) {
	t.Helper()
	frame := make([]byte, virtioHdrLen+len(pkt))
	putVirtioHdr(frame, h)
	copy(frame[virtioHdrLen:], pkt)
	if _, err := w.Write(frame); err != nil {
		t.Fatal(err)
	}
}

// TestFileFramesBatches runs the reader over the Linux frame reader: queued single packets leave in one batch, a
// super-packet is split and ends the batch, bad frames are dropped and
// counted, and a super-packet that does not fit the rest of a batch
// starts the next one.
func TestFileFramesBatches(t *testing.T) {
	r, drops, w := seqpacketTUN(t)
	super, h := superPacket(t, false, tcpRun(false, 1, 0, 6, 1000))
	small := groPkt{udp: true, sport: 7, payload: 200}.build()[HeaderRoom:]
	bufs := make([][]byte, 8)
	for i := range bufs {
		bufs[i] = make([]byte, BufferSize)
	}
	sizes := make([]int, len(bufs))
	read := func(want int) {
		t.Helper()
		n, err := r.read(bufs, sizes)
		if err != nil || n != want {
			t.Fatalf("read %d packets, %v; want %d", n, err, want)
		}
	}

	writeFrame(t, w, virtioHdr{}, small)
	writeFrame(t, w, virtioHdr{gsoType: virtioGSOTCPv4}, super[HeaderRoom:]) // inconsistent: dropped
	writeFrame(t, w, virtioHdr{}, small)
	writeFrame(t, w, virtioHdr{}, small)
	writeFrame(t, w, h, super[HeaderRoom:]) // needs 6 slots, 5 left: carried
	read(3)
	if sizes[0] != len(small) || sizes[2] != len(small) {
		t.Errorf("sizes %v, want the small packets first", sizes[:3])
	}
	if got := drops[DropMalformed]; got != 1 {
		t.Errorf("%d malformed drops, want 1", got)
	}

	writeFrame(t, w, virtioHdr{}, small)
	read(6) // the carried super-packet, which ends the batch
	for k := range 6 {
		checkValid(t, bufs[k][HeaderRoom:HeaderRoom+sizes[k]])
	}
	read(1) // the small packet waited for the next batch
	if sizes[0] != len(small) {
		t.Errorf("size %d, want %d", sizes[0], len(small))
	}
}

// A waiting read parks in Go's poller until a frame comes, a write reaches
// the other end, and Close wakes a parked read with an error.
func TestFileFramesWaitWriteClose(t *testing.T) {
	f, w := seqpacketFiles(t)
	ff := newFileFrames(nil, f)

	type result struct {
		n   int
		err error
	}
	read := func() chan result {
		c := make(chan result, 1)
		go func() {
			b := make([]byte, 64)
			n, err := ff.ReadFrame(b, true)
			c <- result{n, err}
		}()
		return c
	}

	got := read()
	if _, err := w.Write([]byte("frame")); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r.err != nil || r.n != len("frame") {
		t.Fatalf("waiting read: %d bytes, %v; want 5, nil", r.n, r.err)
	}
	if n, err := ff.ReadFrame(make([]byte, 64), false); n != 0 || err != nil {
		t.Fatalf("read with nothing queued: %d, %v; want 0, nil", n, err)
	}

	if err := ff.WriteFrame([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	if n, err := w.Read(b); err != nil || string(b[:n]) != "reply" {
		t.Fatalf("other end read %q, %v; want \"reply\"", b[:n], err)
	}

	got = read()
	f.Close()
	if r := <-got; r.err == nil {
		t.Fatalf("read on a closed file returned %d bytes and no error", r.n)
	}
}
