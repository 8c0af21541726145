package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/tundev/tundevtest"
)

// TestSuperPacketEndToEnd: a 64 KiB TCP super-packet injected with a TSO
// header into a's TUN is split by a's driver, sealed and sent as packets,
// opened by b, and coalesced by b's driver into TSO frames whose payload
// is the super-packet's, in order. Both drivers are tundev's production
// code over the in-memory TUN.
func TestSuperPacketEndToEnd(t *testing.T) {
	a, b := newPair(t, nil)
	establish(t, a, b)
	const mss = 1380 // 1420 MTU less IPv4 and TCP headers
	payload := 65535 - 40
	pkt := make([]byte, 40+payload)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 6 // TCP
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	s, d := a.addr.As4(), b.addr.As4()
	copy(pkt[12:], s[:])
	copy(pkt[16:], d[:])
	binary.BigEndian.PutUint32(pkt[24:], 7)
	pkt[32], pkt[33] = 5<<4, 0x10 // ACK
	for i := range payload {
		pkt[40+i] = byte(i * 13)
	}
	a.tun.InjectFrame(tundevtest.VirtioHdr{
		Flags: tundevtest.FlagNeedsCsum, GSOType: tundevtest.GSOTCPv4,
		HdrLen: 40, GSOSize: mss, CsumStart: 20, CsumOffset: 16,
	}, pkt)

	var got []byte
	frames := 0
	for len(got) < payload {
		select {
		case f := <-b.tun.Outbound:
			frames++
			if f.Hdr.GSOType != tundevtest.GSOTCPv4 || f.Hdr.GSOSize != mss {
				t.Fatalf("frame %d: header %+v, want a TCPv4 super-packet of %d", frames, f.Hdr, mss)
			}
			got = append(got, f.Packet[40:]...)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d bytes arrived; drops at a %v, at b %v", len(got), payload, a.dev.Snapshot().Drops, b.dev.Snapshot().Drops)
		}
	}
	if !bytes.Equal(got, pkt[40:]) {
		t.Error("the coalesced payload differs from the super-packet's")
	}
	segments := (payload + mss - 1) / mss
	if frames >= segments {
		t.Errorf("%d packets came out in %d frames: nothing was coalesced", segments, frames)
	}
	if rx := b.dev.Snapshot().Peers[0].RxPackets; rx < uint64(segments) {
		t.Errorf("b received %d transport packets, want at least %d: the super-packet was not split", rx, segments)
	}
}
