package tunnel

import (
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// tunReader fills a batch from the TUN device. With the device's
// virtio-net header on it reads the file itself: one blocking read, then
// non-blocking reads while single packets are queued, so a stream of small
// packets (which the kernel hands over one per read) still leaves in
// batches, as one GSO train where they are of a size. Super-packets are
// split by splitGSO. Otherwise, and for the in-memory TUN of tests, it
// uses tun.Device.Read.
type tunReader struct {
	dev  tun.Device
	vnet vnetTUN // file nil: use dev.Read

	drops *dropCounters

	// A super-packet that did not fit in the rest of a batch waits in
	// carry (a buffer swapped out of the batch for spare) for the next.
	carry, spare []byte
	carrySize    int

	// One non-blocking read: its buffer and result, and the function that
	// does it, bound once so a read allocates nothing.
	nbBuf  []byte
	nbN    int
	nbErr  error
	nbRead func(fd uintptr) bool
}

func newTUNReader(dev tun.Device, vnet vnetTUN, drops *dropCounters) *tunReader {
	r := &tunReader{dev: dev, vnet: vnet, drops: drops}
	r.nbRead = r.readNonBlocking
	return r
}

func (r *tunReader) readNonBlocking(fd uintptr) bool {
	r.nbN, r.nbErr = unix.Read(int(fd), r.nbBuf)
	return true // never park: EAGAIN just ends the batch
}

// read fills bufs (packets behind HeaderRoom) and sizes, and returns how
// many it filled. A size of 0 marks a slot to skip. Frames it cannot use
// are counted in drops and skipped.
func (r *tunReader) read(bufs [][]byte, sizes []int) (int, error) {
	if r.vnet.file == nil {
		return r.dev.Read(bufs, sizes, HeaderRoom)
	}
	n := 0
	if r.carry != nil {
		copy(bufs[0], r.carry[:HeaderRoom+r.carrySize])
		r.spare, r.carry = r.carry, nil
		m, err := splitGSO(bufs, sizes, r.carrySize, getVirtioHdr(bufs[0][HeaderRoom-virtioHdrLen:]))
		if err != nil {
			r.drops.add(dropFor(err), 1)
		} else {
			return m, nil // a super-packet ends its batch, as below
		}
	}
	for n < len(bufs) {
		nr, err := r.readFrame(bufs[n][HeaderRoom-virtioHdrLen:], n == 0)
		if err != nil {
			return n, err
		}
		if nr == 0 {
			break // nothing more queued
		}
		m, err := r.frame(bufs[n:], sizes[n:], nr)
		if err == tun.ErrTooManySegments && n > 0 {
			// Hold it for the next batch, which starts empty.
			if r.spare == nil {
				r.spare = make([]byte, len(bufs[n]))
			}
			r.carry, bufs[n], r.spare = bufs[n], r.spare, nil
			r.carrySize = nr - virtioHdrLen
			break
		}
		if err != nil {
			r.drops.add(dropFor(err), 1)
			continue
		}
		n += m
		if m > 1 {
			// A super-packet: the stack is sending in bulk and hands
			// over 64 KiB at a time; another read now would mostly find
			// nothing (3 % of the sender's CPU under one TCP stream).
			break
		}
	}
	return n, nil
}

func dropFor(err error) DropReason {
	if err == tun.ErrTooManySegments {
		return DropTooBig
	}
	return DropMalformed
}

// readFrame reads one frame into b, waiting for it when block is set;
// otherwise it returns 0 when nothing is queued.
func (r *tunReader) readFrame(b []byte, block bool) (int, error) {
	if block {
		return r.vnet.file.Read(b)
	}
	r.nbBuf = b
	if err := r.vnet.raw.Read(r.nbRead); err != nil {
		return 0, err
	}
	r.nbBuf = nil
	if r.nbErr == unix.EAGAIN {
		return 0, nil
	}
	return r.nbN, r.nbErr
}

// frame turns the frame read into bufs[0] (virtio-net header in the
// header room, then the packet; nr bytes in all) into packets in bufs,
// and returns how many.
func (r *tunReader) frame(bufs [][]byte, sizes []int, nr int) (int, error) {
	if nr < virtioHdrLen+1 {
		return 0, errBadVirtioHdr
	}
	size := nr - virtioHdrLen
	h := getVirtioHdr(bufs[0][HeaderRoom-virtioHdrLen:])
	if h.gsoType == virtioGSONone {
		if h.flags&virtioFlagNeedsCsum != 0 {
			if err := completeChecksum(bufs[0][HeaderRoom:HeaderRoom+size], h); err != nil {
				return 0, err
			}
		}
		sizes[0] = size
		return 1, nil
	}
	return splitGSO(bufs, sizes, size, h)
}
