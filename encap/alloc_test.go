package encap

import "testing"

// TestNoAllocs holds the per-datagram functions to zero allocations: they run
// for every packet the node sends or receives.
func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 1500)
	init, resp, cookie := sampleInitiation(), sampleResponse(), sampleCookieReply()
	initBuf := init.MarshalTo(make([]byte, InitiationSize))
	respBuf := resp.MarshalTo(make([]byte, ResponseSize))
	cookieBuf := cookie.MarshalTo(make([]byte, CookieReplySize))
	transport := msg(TypeTransport, 1452)
	garbage := msg(9, 100)
	var (
		sinkT uint32
		sinkC uint64
		sinkN int
		sinkE error
	)
	tests := []struct {
		name string
		f    func()
	}{
		{"Classify transport", func() { sinkT, sinkE = Classify(transport) }},
		{"Classify initiation", func() { sinkT, sinkE = Classify(initBuf) }},
		{"Classify garbage", func() { sinkT, sinkE = Classify(garbage) }},
		{"Initiation.MarshalTo", func() { init.MarshalTo(buf) }},
		{"Initiation.Unmarshal", func() { sinkE = init.Unmarshal(initBuf) }},
		{"Initiation.Unmarshal error", func() { sinkE = init.Unmarshal(respBuf) }},
		{"Response.MarshalTo", func() { resp.MarshalTo(buf) }},
		{"Response.Unmarshal", func() { sinkE = resp.Unmarshal(respBuf) }},
		{"CookieReply.MarshalTo", func() { cookie.MarshalTo(buf) }},
		{"CookieReply.Unmarshal", func() { sinkE = cookie.Unmarshal(cookieBuf) }},
		{"PutTransportHeader", func() { PutTransportHeader(buf, 7, 99) }},
		{"ParseTransportHeader", func() { sinkT, sinkC, sinkE = ParseTransportHeader(transport) }},
		{"ParseTransportHeader error", func() { sinkT, sinkC, sinkE = ParseTransportHeader(garbage) }},
		{"PaddedLen", func() { sinkN = PaddedLen(1399, 1420) }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got != 0 {
			t.Errorf("%s: got %v allocs per run, want 0", tt.name, got)
		}
	}
	_, _, _, _ = sinkT, sinkC, sinkN, sinkE
}

func BenchmarkClassify(b *testing.B) {
	pkt := msg(TypeTransport, 1452)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Classify(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransportHeader(b *testing.B) {
	pkt := make([]byte, 1452)
	b.ReportAllocs()
	var c uint64
	for b.Loop() {
		c++
		PutTransportHeader(pkt, 12345, c)
		if _, got, err := ParseTransportHeader(pkt); got != c || err != nil {
			b.Fatalf("got counter %d, %v; want %d, nil", got, err, c)
		}
	}
}

func BenchmarkInitiation(b *testing.B) {
	m := sampleInitiation()
	buf := make([]byte, InitiationSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Unmarshal(m.MarshalTo(buf)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResponse(b *testing.B) {
	m := sampleResponse()
	buf := make([]byte, ResponseSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Unmarshal(m.MarshalTo(buf)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCookieReply(b *testing.B) {
	m := sampleCookieReply()
	buf := make([]byte, CookieReplySize)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Unmarshal(m.MarshalTo(buf)); err != nil {
			b.Fatal(err)
		}
	}
}
