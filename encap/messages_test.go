package encap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"golang.zx2c4.com/wireguard/device"
)

// pattern fills b with bytes that differ from their neighbours, starting at
// seed, so that a field copied to the wrong offset cannot go unnoticed.
func pattern(b []byte, seed byte) {
	for i := range b {
		b[i] = seed + byte(i)*7
	}
}

func sampleInitiation() Initiation {
	var m Initiation
	m.Sender = 0x04030201
	pattern(m.Ephemeral[:], 1)
	pattern(m.Static[:], 2)
	pattern(m.Timestamp[:], 3)
	pattern(m.MAC1[:], 4)
	pattern(m.MAC2[:], 5)
	return m
}

func sampleResponse() Response {
	var m Response
	m.Sender = 0x0d0c0b0a
	m.Receiver = 0xfffefdfc
	pattern(m.Ephemeral[:], 6)
	pattern(m.Empty[:], 7)
	pattern(m.MAC1[:], 8)
	pattern(m.MAC2[:], 9)
	return m
}

func sampleCookieReply() CookieReply {
	var m CookieReply
	m.Receiver = 0x80706050
	pattern(m.Nonce[:], 10)
	pattern(m.Cookie[:], 11)
	return m
}

// msg returns n bytes of type t, the rest patterned.
func msg(t uint32, n int) []byte {
	b := make([]byte, n)
	pattern(b, 42)
	if n >= 4 {
		binary.LittleEndian.PutUint32(b, t)
	}
	return b
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want uint32
		err  error
	}{
		{"nil", nil, 0, ErrTooShort},
		{"one byte", []byte{1}, 0, ErrTooShort},
		{"three bytes", []byte{4, 0, 0}, 0, ErrTooShort},
		{"type only", msg(TypeInitiation, 4), 0, ErrBadLength},
		{"initiation", msg(TypeInitiation, InitiationSize), TypeInitiation, nil},
		{"initiation short", msg(TypeInitiation, InitiationSize-1), 0, ErrBadLength},
		{"initiation long", msg(TypeInitiation, InitiationSize+1), 0, ErrBadLength},
		{"initiation as transport size", msg(TypeInitiation, 1500), 0, ErrBadLength},
		{"response", msg(TypeResponse, ResponseSize), TypeResponse, nil},
		{"response short", msg(TypeResponse, ResponseSize-1), 0, ErrBadLength},
		{"response long", msg(TypeResponse, ResponseSize+1), 0, ErrBadLength},
		{"response at initiation size", msg(TypeResponse, InitiationSize), 0, ErrBadLength},
		{"cookie reply", msg(TypeCookieReply, CookieReplySize), TypeCookieReply, nil},
		{"cookie reply short", msg(TypeCookieReply, CookieReplySize-1), 0, ErrBadLength},
		{"cookie reply long", msg(TypeCookieReply, CookieReplySize+1), 0, ErrBadLength},
		{"keepalive", msg(TypeTransport, TransportMinSize), TypeTransport, nil},
		{"transport", msg(TypeTransport, 1452), TypeTransport, nil},
		{"transport odd length", msg(TypeTransport, TransportMinSize+1), TypeTransport, nil},
		{"transport max", msg(TypeTransport, MaxSegmentSize), TypeTransport, nil},
		{"transport header only", msg(TypeTransport, TransportHeaderSize), 0, ErrTooShort},
		{"transport short", msg(TypeTransport, TransportMinSize-1), 0, ErrTooShort},
		{"type 0", msg(0, InitiationSize), 0, ErrUnknownType},
		{"type 5", msg(5, 100), 0, ErrUnknownType},
		{"type 255", msg(255, 100), 0, ErrUnknownType},
		{"initiation reserved byte 1", msg(TypeInitiation|1<<8, InitiationSize), 0, ErrUnknownType},
		{"response reserved byte 2", msg(TypeResponse|1<<16, ResponseSize), 0, ErrUnknownType},
		{"cookie reply reserved byte 3", msg(TypeCookieReply|1<<24, CookieReplySize), 0, ErrUnknownType},
		{"transport reserved byte 3", msg(TypeTransport|0x80<<24, 100), 0, ErrUnknownType},
		{"big-endian initiation", msg(TypeInitiation<<24, InitiationSize), 0, ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Classify(tt.b)
			if got != tt.want || err != tt.err {
				t.Errorf("Classify(%d bytes) = %d, %v; want %d, %v", len(tt.b), got, err, tt.want, tt.err)
			}
		})
	}
}

// TestLayoutMatchesWireGuardGo checks the layouts against wireguard-go's
// message structs, encoded field by field in declaration order, which is how
// WireGuard defines the wire format.
func TestLayoutMatchesWireGuardGo(t *testing.T) {
	init := sampleInitiation()
	wgInit := device.MessageInitiation{
		Type: device.MessageInitiationType, Sender: init.Sender, Ephemeral: device.NoisePublicKey(init.Ephemeral),
		Static: init.Static, Timestamp: init.Timestamp, MAC1: init.MAC1, MAC2: init.MAC2,
	}
	resp := sampleResponse()
	wgResp := device.MessageResponse{
		Type: device.MessageResponseType, Sender: resp.Sender, Receiver: resp.Receiver,
		Ephemeral: device.NoisePublicKey(resp.Ephemeral), Empty: resp.Empty, MAC1: resp.MAC1, MAC2: resp.MAC2,
	}
	cookie := sampleCookieReply()
	wgCookie := device.MessageCookieReply{
		Type: device.MessageCookieReplyType, Receiver: cookie.Receiver, Nonce: cookie.Nonce, Cookie: cookie.Cookie,
	}
	tests := []struct {
		name string
		ours func([]byte) []byte
		wg   any
		size int
	}{
		{"initiation", init.MarshalTo, &wgInit, device.MessageInitiationSize},
		{"response", resp.MarshalTo, &wgResp, device.MessageResponseSize},
		{"cookie reply", cookie.MarshalTo, &wgCookie, device.MessageCookieReplySize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := binary.Write(&want, binary.LittleEndian, tt.wg); err != nil {
				t.Fatal(err)
			}
			got := tt.ours(make([]byte, InitiationSize))
			if len(got) != tt.size || !bytes.Equal(got, want.Bytes()) {
				t.Errorf("MarshalTo =\n%x\nwant (wireguard-go layout)\n%x", got, want.Bytes())
			}
		})
	}

	var hdr [TransportHeaderSize]byte
	PutTransportHeader(hdr[:], 0xa1b2c3d4, 0x0102030405060708)
	var want [TransportHeaderSize]byte
	binary.LittleEndian.PutUint32(want[:], device.MessageTransportType)
	binary.LittleEndian.PutUint32(want[device.MessageTransportOffsetReceiver:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint64(want[device.MessageTransportOffsetCounter:], 0x0102030405060708)
	if hdr != want {
		t.Errorf("PutTransportHeader = %x, want %x", hdr, want)
	}
	if TransportHeaderSize != device.MessageTransportHeaderSize || TransportMinSize != device.MessageTransportSize {
		t.Errorf("transport content offset %d, min size %d; want %d, %d", TransportHeaderSize,
			TransportMinSize, device.MessageTransportHeaderSize, device.MessageTransportSize)
	}
}

func TestRoundTrip(t *testing.T) {
	buf := make([]byte, InitiationSize+8) // larger than needed: MarshalTo must use a prefix
	t.Run("initiation", func(t *testing.T) {
		in := sampleInitiation()
		b := in.MarshalTo(buf)
		if typ, err := Classify(b); typ != TypeInitiation || err != nil {
			t.Fatalf("Classify(marshalled) = %d, %v; want %d, nil", typ, err, TypeInitiation)
		}
		var out Initiation
		if err := out.Unmarshal(b); err != nil || out != in {
			t.Errorf("Unmarshal(MarshalTo(m)) = %+v, %v; want %+v, nil", out, err, in)
		}
	})
	t.Run("response", func(t *testing.T) {
		in := sampleResponse()
		b := in.MarshalTo(buf)
		if typ, err := Classify(b); typ != TypeResponse || err != nil {
			t.Fatalf("Classify(marshalled) = %d, %v; want %d, nil", typ, err, TypeResponse)
		}
		var out Response
		if err := out.Unmarshal(b); err != nil || out != in {
			t.Errorf("Unmarshal(MarshalTo(m)) = %+v, %v; want %+v, nil", out, err, in)
		}
	})
	t.Run("cookie reply", func(t *testing.T) {
		in := sampleCookieReply()
		b := in.MarshalTo(buf)
		if typ, err := Classify(b); typ != TypeCookieReply || err != nil {
			t.Fatalf("Classify(marshalled) = %d, %v; want %d, nil", typ, err, TypeCookieReply)
		}
		var out CookieReply
		if err := out.Unmarshal(b); err != nil || out != in {
			t.Errorf("Unmarshal(MarshalTo(m)) = %+v, %v; want %+v, nil", out, err, in)
		}
	})
	t.Run("transport", func(t *testing.T) {
		b := make([]byte, TransportMinSize+16)
		for _, c := range []uint64{0, 1, 1<<60 - 1, 1<<64 - 1} {
			PutTransportHeader(b, 0xdeadbeef, c)
			r, got, err := ParseTransportHeader(b)
			if r != 0xdeadbeef || got != c || err != nil {
				t.Errorf("ParseTransportHeader(PutTransportHeader(0xdeadbeef, %d)) = %#x, %d, %v; want 0xdeadbeef, %d, nil",
					c, r, got, err, c)
			}
		}
	})
}

// unmarshaler is what the three handshake message types have in common.
type unmarshaler interface{ Unmarshal([]byte) error }

func TestUnmarshalErrors(t *testing.T) {
	types := []struct {
		name string
		typ  uint32
		size int
		new  func() unmarshaler
	}{
		{"initiation", TypeInitiation, InitiationSize, func() unmarshaler { m := sampleInitiation(); return &m }},
		{"response", TypeResponse, ResponseSize, func() unmarshaler { m := sampleResponse(); return &m }},
		{"cookie reply", TypeCookieReply, CookieReplySize, func() unmarshaler { m := sampleCookieReply(); return &m }},
	}
	for _, ty := range types {
		otherHandshake := uint32(TypeResponse)
		if ty.typ == TypeResponse {
			otherHandshake = TypeInitiation
		}
		cases := []struct {
			name string
			b    []byte
			err  error
		}{
			{"nil", nil, ErrTooShort},
			{"3 bytes", msg(ty.typ, 3)[:3], ErrTooShort},
			{"type only", msg(ty.typ, 4), ErrBadLength},
			{"one short", msg(ty.typ, ty.size-1), ErrBadLength},
			{"one long", msg(ty.typ, ty.size+1), ErrBadLength},
			{"double", msg(ty.typ, 2*ty.size), ErrBadLength},
			{"transport type", msg(TypeTransport, ty.size), ErrWrongType},
			{"other handshake type", msg(otherHandshake, ty.size), ErrWrongType},
			{"type 0", msg(0, ty.size), ErrUnknownType},
			{"type 9", msg(9, ty.size), ErrUnknownType},
			{"reserved byte 1", msg(ty.typ|1<<8, ty.size), ErrUnknownType},
			{"reserved byte 2", msg(ty.typ|1<<16, ty.size), ErrUnknownType},
			{"reserved byte 3", msg(ty.typ|1<<24, ty.size), ErrUnknownType},
		}
		for _, c := range cases {
			t.Run(ty.name+"/"+c.name, func(t *testing.T) {
				m, before := ty.new(), ty.new()
				err := m.Unmarshal(c.b)
				if err != c.err {
					t.Errorf("Unmarshal(%d bytes) = %v, want %v", len(c.b), err, c.err)
				}
				if fmt.Sprint(m) != fmt.Sprint(before) {
					t.Errorf("failed Unmarshal changed the message: got %+v, want %+v", m, before)
				}
			})
		}
	}
}

func TestParseTransportHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"nil", nil, ErrTooShort},
		{"header only", msg(TypeTransport, TransportHeaderSize), ErrTooShort},
		{"one short", msg(TypeTransport, TransportMinSize-1), ErrTooShort},
		{"initiation", msg(TypeInitiation, InitiationSize), ErrWrongType},
		{"cookie reply", msg(TypeCookieReply, CookieReplySize), ErrWrongType},
		{"type 0", msg(0, 64), ErrUnknownType},
		{"reserved byte 1", msg(TypeTransport|1<<8, 64), ErrUnknownType},
		{"reserved byte 3", msg(TypeTransport|1<<24, 64), ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, c, err := ParseTransportHeader(tt.b)
			if r != 0 || c != 0 || err != tt.err {
				t.Errorf("ParseTransportHeader(%d bytes) = %d, %d, %v; want 0, 0, %v", len(tt.b), r, c, err, tt.err)
			}
		})
	}
}

func TestPaddedLen(t *testing.T) {
	tests := []struct{ n, mtu, want int }{
		{0, 1420, 0},   // keepalive
		{-1, 1420, 0},  // nonsense stays harmless
		{1, 1420, 16},  // smallest packet
		{16, 1420, 16}, // already aligned
		{17, 1420, 32},
		{20, 1420, 32},     // bare IPv4 header
		{1400, 1420, 1408}, // below mtu, rounds up
		{1409, 1420, 1420}, // rounding would pass mtu: capped at mtu
		{1419, 1420, 1420},
		{1420, 1420, 1420}, // exactly mtu, not a multiple of 16: unpadded
		{1421, 1420, 1421}, // already above mtu: never padded, never cut
		{1500, 1420, 1500},
		{1280, 1280, 1280},
		{1279, 1280, 1280},
		{100, 0, 112}, // no mtu: plain rounding
		{100, -1, 112},
		{65535, 0, 65536},
	}
	for _, tt := range tests {
		if got := PaddedLen(tt.n, tt.mtu); got != tt.want {
			t.Errorf("PaddedLen(%d, %d) = %d, want %d", tt.n, tt.mtu, got, tt.want)
		}
	}
}

func TestMarshalToShortBufferPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"initiation", func() { m := sampleInitiation(); m.MarshalTo(make([]byte, InitiationSize-1)) }},
		{"response", func() { m := sampleResponse(); m.MarshalTo(make([]byte, ResponseSize-1)) }},
		{"cookie reply", func() { m := sampleCookieReply(); m.MarshalTo(make([]byte, CookieReplySize-1)) }},
		{"transport header", func() { PutTransportHeader(make([]byte, TransportHeaderSize-1), 1, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("MarshalTo into a short buffer did not panic")
				}
			}()
			tt.f()
		})
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	errs := []error{ErrTooShort, ErrUnknownType, ErrBadLength, ErrWrongType}
	for i, a := range errs {
		for j, b := range errs {
			if (i == j) != errors.Is(a, b) {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", a, b, !(i == j), i == j)
			}
		}
	}
}
