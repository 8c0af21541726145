package packet

import (
	"encoding/binary"
	"testing"
)

// TestFieldOffsets reads the named fields of built packets and checks them
// against what Parse and the builders say they hold.
func TestFieldOffsets(t *testing.T) {
	l4 := tcp(1, 2, TCPFlagACK|TCPFlagPSH, 8, 10)
	binary.BigEndian.PutUint32(l4[TCPSeqOff:], 0x01020304)
	binary.BigEndian.PutUint32(l4[TCPAckOff:], 0x05060708)
	binary.BigEndian.PutUint16(l4[TCPWindowOff:], 512)

	b4 := v4{proto: ProtoTCP, id: 0xbeef, frag: 0x4000, l4: l4, opts: make([]byte, 4)}.bytes()
	b6 := v6{proto: ProtoTCP, exts: exts(1, extDestOpts), l4: l4}.bytes()
	for _, b := range [][]byte{b4, b6} {
		p, err := Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(p.Addrs(b)), string(p.Src.AsSlice())+string(p.Dst.AsSlice()); got != want {
			t.Errorf("IPv%d Addrs %x, want %x", p.Version, got, want)
		}
		l := b[p.HeaderLen:]
		if got := l[TCPFlagsOff]; got != p.TCPFlags {
			t.Errorf("IPv%d TCP flags %#02x, want %#02x", p.Version, got, p.TCPFlags)
		}
		if got := binary.BigEndian.Uint32(l[TCPSeqOff:]); got != 0x01020304 {
			t.Errorf("IPv%d TCP seq %#x", p.Version, got)
		}
		if got := binary.BigEndian.Uint32(l[TCPAckOff:]); got != 0x05060708 {
			t.Errorf("IPv%d TCP ack %#x", p.Version, got)
		}
		if got := binary.BigEndian.Uint16(l[TCPWindowOff:]); got != 512 {
			t.Errorf("IPv%d TCP window %d", p.Version, got)
		}
	}
	if b4[IPv4ProtoOff] != ProtoTCP || b4[IPv4TTLOff] != 64 || binary.BigEndian.Uint16(b4[IPv4IDOff:]) != 0xbeef ||
		b4[IPv4FlagsOff] != IPv4FlagDF || int(binary.BigEndian.Uint16(b4[IPv4TotalLenOff:])) != len(b4) {
		t.Errorf("IPv4 fields misplaced in %x", b4[:IPv4HeaderLen])
	}
	if b6[IPv6NextHeaderOff] != extDestOpts || b6[IPv6HopLimitOff] != 64 ||
		int(binary.BigEndian.Uint16(b6[IPv6PayloadLenOff:]))+IPv6HeaderLen != len(b6) {
		t.Errorf("IPv6 fields misplaced in %x", b6[:IPv6HeaderLen])
	}

	u := udp(1, 2, 5)
	if got := binary.BigEndian.Uint16(u[UDPLenOff:]); got != UDPHeaderLen+5 {
		t.Errorf("UDP length %d, want %d", got, UDPHeaderLen+5)
	}
}

func TestSetTotalLen(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		n    int
		want error
	}{
		{"IPv4 options", v4{proto: ProtoUDP, opts: make([]byte, 8), l4: udp(1, 2, 100), total: 1}.bytes(), 0, nil},
		{"IPv4 longest", v4{proto: ProtoUDP, l4: udp(1, 2, 100)}.bytes(), MaxIPv4Len, nil},
		{"IPv4 too long", v4{proto: ProtoUDP, l4: udp(1, 2, 100)}.bytes(), MaxIPv4Len + 1, ErrTruncated},
		{"IPv4 shorter than its header", v4{proto: ProtoUDP}.bytes(), IPv4HeaderLen - 1, ErrTruncated},
		{"IPv6 extension headers", v6{proto: ProtoTCP, exts: exts(2, extHopByHop), l4: tcp(1, 2, 0, 5, 9), payload: 3}.bytes(), 0, nil},
		{"IPv6 longest", v6{proto: ProtoUDP, l4: udp(1, 2, 100)}.bytes(), IPv6HeaderLen + MaxIPv4Len, nil},
		{"IPv6 too long", v6{proto: ProtoUDP, l4: udp(1, 2, 100)}.bytes(), IPv6HeaderLen + MaxIPv4Len + 1, ErrTruncated},
		{"IPv6 shorter than its header", v6{proto: ProtoUDP}.bytes(), IPv6HeaderLen - 1, ErrTruncated},
		{"empty", nil, 0, ErrShort},
		{"short IPv4", []byte{0x45, 0, 0}, 3, ErrShort},
		{"short IPv6", append([]byte{0x60}, make([]byte, 38)...), 39, ErrShort},
		{"version 0", make([]byte, 40), 40, ErrVersion},
		{"version 5", append([]byte{0x50}, make([]byte, 40)...), 41, ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.n
			if n == 0 {
				n = len(tc.b)
			}
			orig := string(tc.b)
			if err := SetTotalLen(tc.b, n); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				if string(tc.b) != orig {
					t.Error("refused, but wrote the packet")
				}
				return
			}
			if n == len(tc.b) { // the length now parses as the buffer's
				p, err := Parse(tc.b)
				if err != nil || p.TotalLen != n {
					t.Errorf("parsed total length %d, %v; want %d", p.TotalLen, err, n)
				}
				return
			}
			var got int
			if tc.b[0]>>4 == 4 {
				got = int(binary.BigEndian.Uint16(tc.b[IPv4TotalLenOff:]))
			} else {
				got = IPv6HeaderLen + int(binary.BigEndian.Uint16(tc.b[IPv6PayloadLenOff:]))
			}
			if got != n {
				t.Errorf("length field says %d, want %d", got, n)
			}
		})
	}
}
