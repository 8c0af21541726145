package tundev_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"

	"github.com/overlay-node/overlay-node/tundev"
	"github.com/overlay-node/overlay-node/tundev/tundevtest"
)

// The driver through its public Device, over the in-memory TUN: what the
// kernel's side of a virtio-net TUN hands over and takes.

const hr = tundev.HeaderRoom

// tcpSuper builds an IPv4/TCP packet with payload bytes of pattern, and
// the virtio-net header the kernel gives it as a super-packet cut every
// mss bytes (checksum field: the pseudo-header sum, as left partial).
func tcpSuper(payload, mss int, seq uint32) ([]byte, tundevtest.VirtioHdr) {
	pkt := make([]byte, 40+payload)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(pkt[2:], uint16(min(len(pkt), 0xffff)))
	binary.BigEndian.PutUint16(pkt[4:], 100) // IP ID
	pkt[6] = 0x40
	copy(pkt[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(pkt[20:], 40000)
	binary.BigEndian.PutUint16(pkt[22:], 5201)
	binary.BigEndian.PutUint32(pkt[24:], seq)
	pkt[32], pkt[33] = 5<<4, 0x18 // ACK|PSH
	binary.BigEndian.PutUint16(pkt[34:], 512)
	for i := range payload {
		pkt[40+i] = byte(i*7 + i>>8)
	}
	binary.BigEndian.PutUint16(pkt[36:], fold(sum(pkt[12:20], 6+uint32(len(pkt)-20))))
	return pkt, tundevtest.VirtioHdr{
		Flags: tundevtest.FlagNeedsCsum, GSOType: tundevtest.GSOTCPv4,
		HdrLen: 40, GSOSize: uint16(mss), CsumStart: 20, CsumOffset: 16,
	}
}

// sum and fold: a plain RFC 1071 reference, independent of the driver's.
func sum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// checkTCP verifies pkt's IPv4 header and TCP checksums and its lengths.
func checkTCP(t *testing.T, pkt []byte) {
	t.Helper()
	if got := int(binary.BigEndian.Uint16(pkt[2:])); got != len(pkt) {
		t.Fatalf("IP total length %d, packet %d bytes", got, len(pkt))
	}
	if fold(sum(pkt[:20], 0)) != 0xffff {
		t.Fatalf("bad IPv4 header checksum in %x", pkt[:20])
	}
	if fold(sum(pkt[20:], sum(pkt[12:20], 6+uint32(len(pkt)-20)))) != 0xffff {
		t.Fatal("bad TCP checksum")
	}
}

func newBatch(n int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, tundev.BufferSize)
	}
	return bufs, make([]int, n)
}

func udpPacket(payload int) []byte {
	pkt := make([]byte, 28+payload)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	copy(pkt[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+payload))
	return pkt
}

// TestReadSplits64KiB: a 64 KiB TSO super-packet comes out as packets of
// mss payload each, with their own headers, consecutive sequence numbers
// and valid checksums, carrying the super-packet's payload in order.
func TestReadSplits64KiB(t *testing.T) {
	fake := tundevtest.NewTUN(tundevtest.Config{Batch: 128})
	dev := tundev.New(fake, tundev.Options{})
	super, h := tcpSuper(65535-40, 1448, 1000)
	fake.InjectFrame(h, super)
	bufs, sizes := newBatch(128)
	n, err := dev.Read(bufs, sizes)
	if want := (65535 - 40 + 1447) / 1448; err != nil || n != want {
		t.Fatalf("read %d packets, %v; want %d", n, err, want)
	}
	var payload []byte
	for k := range n {
		pkt := bufs[k][hr : hr+sizes[k]]
		checkTCP(t, pkt)
		if seq := binary.BigEndian.Uint32(pkt[24:]); seq != 1000+uint32(len(payload)) {
			t.Fatalf("packet %d: seq %d, want %d", k, seq, 1000+len(payload))
		}
		payload = append(payload, pkt[40:]...)
	}
	if !bytes.Equal(payload, super[40:]) {
		t.Error("the packets' payloads do not add up to the super-packet's")
	}
}

// TestReadCompletesChecksum: a single packet with NEEDS_CSUM comes out
// with its checksum complete.
func TestReadCompletesChecksum(t *testing.T) {
	fake := tundevtest.NewTUN(tundevtest.Config{Batch: 8})
	dev := tundev.New(fake, tundev.Options{})
	pkt, h := tcpSuper(300, 1448, 1)
	binary.BigEndian.PutUint16(pkt[10:], ^fold(sum(pkt[:20], 0)))
	h.GSOType, h.GSOSize = tundevtest.GSONone, 0
	fake.InjectFrame(h, pkt)
	bufs, sizes := newBatch(8)
	if n, err := dev.Read(bufs, sizes); err != nil || n != 1 || sizes[0] != len(pkt) {
		t.Fatalf("read %d packets (%v), %v; want 1 of %d bytes", n, sizes[:n], err, len(pkt))
	}
	checkTCP(t, bufs[0][hr:hr+sizes[0]])
}

// TestReadCarry: a super-packet that does not fit the rest of a batch is
// carried to the next Read, which it fills and ends; a frame queued
// behind it waits for the Read after that. Malformed and too-big frames
// are reported and skipped.
func TestReadCarry(t *testing.T) {
	fake := tundevtest.NewTUN(tundevtest.Config{Batch: 8})
	var drops [2]int
	dev := tundev.New(fake, tundev.Options{Drop: func(d tundev.Drop) { drops[d]++ }})
	bufs, sizes := newBatch(8)
	small := udpPacket(200)
	super, h := tcpSuper(6*1000, 1000, 1) // 6 packets

	fake.Inject(small)
	fake.InjectFrame(tundevtest.VirtioHdr{GSOType: tundevtest.GSOTCPv4}, super) // no NEEDS_CSUM, no size: malformed
	fake.Inject(small)
	fake.Inject(small)
	fake.InjectFrame(h, super) // 6 packets, 5 slots left: carried
	n, err := dev.Read(bufs, sizes)
	if err != nil || n != 3 {
		t.Fatalf("first read: %d packets, %v; want the 3 small ones", n, err)
	}
	for k := range n {
		if sizes[k] != len(small) {
			t.Errorf("first read: packet %d is %d bytes, want %d", k, sizes[k], len(small))
		}
	}
	if drops[tundev.DropMalformed] != 1 {
		t.Errorf("%d malformed drops, want 1", drops[tundev.DropMalformed])
	}

	fake.Inject(small)
	n, err = dev.Read(bufs, sizes)
	if err != nil || n != 6 {
		t.Fatalf("second read: %d packets, %v; want the carried super-packet's 6", n, err)
	}
	var payload []byte
	for k := range n {
		pkt := bufs[k][hr : hr+sizes[k]]
		checkTCP(t, pkt)
		payload = append(payload, pkt[40:]...)
	}
	if !bytes.Equal(payload, super[40:]) {
		t.Error("the carried super-packet's payload did not survive")
	}
	if n, err = dev.Read(bufs, sizes); err != nil || n != 1 || sizes[0] != len(small) {
		t.Fatalf("third read: %d packets (%v), %v; want the small one", n, sizes[:n], err)
	}

	// Too big even for an empty batch: 9 packets for 8 slots.
	big, hb := tcpSuper(9*100, 100, 1)
	fake.InjectFrame(hb, big)
	fake.Inject(small)
	if n, err = dev.Read(bufs, sizes); err != nil || n != 1 {
		t.Fatalf("read after a too-big super-packet: %d packets, %v; want the small one", n, err)
	}
	if drops[tundev.DropTooBig] != 1 {
		t.Errorf("%d too-big drops, want 1", drops[tundev.DropTooBig])
	}
}

// TestWriteCoalesces: a run of one TCP flow's packets is written as one
// TSO frame with the payloads in order; UDP packets go one per frame
// unless the device takes UDP GSO.
func TestWriteCoalesces(t *testing.T) {
	for _, uso := range []bool{false, true} {
		fake := tundevtest.NewTUN(tundevtest.Config{Batch: 64, UDPGSO: uso})
		dev := tundev.New(fake, tundev.Options{})
		var bufs [][]byte
		var want []byte
		for k := range 10 {
			pkt, _ := tcpSuper(1000, 1000, uint32(1+k*1000))
			pkt[33] = 0x10 // ACK only: PSH would end the flow
			binary.BigEndian.PutUint16(pkt[10:], ^fold(sum(pkt[:20], 0)))
			want = append(want, pkt[40:]...)
			bufs = append(bufs, append(make([]byte, hr, tundev.BufferSize), pkt...))
		}
		for range 4 {
			bufs = append(bufs, append(make([]byte, hr, tundev.BufferSize), udpPacket(500)...))
		}
		if err := dev.Write(bufs); err != nil {
			t.Fatal(err)
		}
		f := <-fake.Outbound
		if f.Hdr.GSOType != tundevtest.GSOTCPv4 || f.Hdr.GSOSize != 1000 || f.Hdr.Flags != tundevtest.FlagNeedsCsum {
			t.Errorf("USO %v: first frame's header %+v, want TCPv4 GSO of 1000 with NEEDS_CSUM", uso, f.Hdr)
		}
		if !bytes.Equal(f.Packet[40:], want) {
			t.Errorf("USO %v: the coalesced payload is not the packets' in order", uso)
		}
		wantFrames := uint64(1 + 4)
		if uso {
			wantFrames = 2
		}
		if got := fake.Frames(); got != wantFrames {
			t.Errorf("USO %v: %d frames written, want %d", uso, got, wantFrames)
		}
		if got := fake.Written(); got != 14 {
			t.Errorf("USO %v: the frames carry %d packets, want 14", uso, got)
		}
	}
}

// TestPlainFallback: a device without the virtio-net header is read and
// written through its own Read and Write, packets behind HeaderRoom.
func TestPlainFallback(t *testing.T) {
	fake := tundevtest.NewTUN(tundevtest.Config{Batch: 8})
	dev := tundev.New(fake.Plain(), tundev.Options{})
	small := udpPacket(100)
	fake.Inject(small)
	fake.Inject(small)
	bufs, sizes := newBatch(8)
	if n, err := dev.Read(bufs, sizes); err != nil || n != 2 || !bytes.Equal(bufs[1][hr:hr+sizes[1]], small) {
		t.Fatalf("read %d packets, %v; want 2 copies of the packet", n, err)
	}
	if err := dev.Write([][]byte{bufs[0][:hr+sizes[0]], bufs[1][:hr+sizes[1]]}); err != nil {
		t.Fatal(err)
	}
	if fake.Frames() != 2 {
		t.Errorf("%d frames written, want 2: the fallback does not coalesce", fake.Frames())
	}
}

// TestClose: Read returns os.ErrClosed once the device is closed, also
// when it was waiting, and so does Write.
func TestClose(t *testing.T) {
	for _, plain := range []bool{false, true} {
		fake := tundevtest.NewTUN(tundevtest.Config{Batch: 8})
		dev := tundev.New(fake, tundev.Options{})
		if plain {
			dev = tundev.New(fake.Plain(), tundev.Options{})
		}
		errc := make(chan error)
		go func() {
			bufs, sizes := newBatch(8)
			_, err := dev.Read(bufs, sizes)
			errc <- err
		}()
		if err := dev.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, os.ErrClosed) {
			t.Errorf("plain %v: Read after Close: %v, want os.ErrClosed", plain, err)
		}
		buf := append(make([]byte, hr, tundev.BufferSize), udpPacket(10)...)
		if err := dev.Write([][]byte{buf}); !errors.Is(err, os.ErrClosed) {
			t.Errorf("plain %v: Write after Close: %v, want os.ErrClosed", plain, err)
		}
	}
}
