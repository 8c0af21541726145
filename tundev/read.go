package tundev

import "golang.zx2c4.com/wireguard/tun"

// reader fills a batch from a Framed device: one blocking read, then
// non-blocking reads while frames are queued, so a stream of small
// packets (which the kernel hands over one per read) still leaves in
// batches, as one GSO train where they are of a size. Super-packets are
// split by splitGSO.
type reader struct {
	dev  Framed
	drop func(Drop)

	// A super-packet that did not fit in the rest of a batch waits in
	// carry (a buffer swapped out of the batch for spare) for the next.
	carry, spare []byte
	carrySize    int
}

func newReader(dev Framed, drop func(Drop)) *reader {
	return &reader{dev: dev, drop: drop}
}

// read fills bufs (packets behind HeaderRoom) and sizes, and returns how
// many it filled. Frames it cannot use are counted with drop and skipped.
func (r *reader) read(bufs [][]byte, sizes []int) (int, error) {
	n := 0
	if r.carry != nil {
		copy(bufs[0], r.carry[:HeaderRoom+r.carrySize])
		r.spare, r.carry = r.carry, nil
		m, err := splitGSO(bufs, sizes, r.carrySize, getVirtioHdr(bufs[0][HeaderRoom-virtioHdrLen:]))
		if err != nil {
			r.drop(dropFor(err))
		} else {
			return m, nil // a super-packet ends its batch, as below
		}
	}
	for n < len(bufs) {
		nr, err := r.dev.ReadFrame(bufs[n][HeaderRoom-virtioHdrLen:], n == 0)
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
			r.drop(dropFor(err))
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

func dropFor(err error) Drop {
	if err == tun.ErrTooManySegments {
		return DropTooBig
	}
	return DropMalformed
}

// frame turns the frame read into bufs[0] (virtio-net header in the
// header room, then the packet; nr bytes in all) into packets in bufs,
// and returns how many.
func (r *reader) frame(bufs [][]byte, sizes []int, nr int) (int, error) {
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
