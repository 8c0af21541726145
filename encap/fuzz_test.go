package encap

import (
	"bytes"
	"testing"
)

// FuzzMessages feeds arbitrary datagrams to every parser. None may panic;
// Classify and the type-specific parsers must agree on what is valid; and
// whatever parses must marshal back to exactly the bytes it came from, so
// that no field is dropped, moved or invented on the way through.
func FuzzMessages(f *testing.F) {
	init, resp, cookie := sampleInitiation(), sampleResponse(), sampleCookieReply()
	f.Add(init.MarshalTo(make([]byte, InitiationSize)))
	f.Add(resp.MarshalTo(make([]byte, ResponseSize)))
	f.Add(cookie.MarshalTo(make([]byte, CookieReplySize)))
	f.Add(msg(TypeTransport, TransportMinSize))
	f.Add(msg(TypeTransport, 1452))
	f.Add(msg(TypeInitiation|1<<8, InitiationSize))
	f.Add(msg(TypeTransport, TransportMinSize-1))
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0})

	f.Fuzz(func(t *testing.T, b []byte) {
		typ, classifyErr := Classify(b)
		if (typ == 0) == (classifyErr == nil) {
			t.Fatalf("Classify = %d, %v: want exactly one of a type and an error", typ, classifyErr)
		}

		buf := make([]byte, InitiationSize)
		var (
			i Initiation
			r Response
			c CookieReply
		)
		checks := []struct {
			typ       uint32
			err       error
			roundTrip func() []byte
		}{
			{TypeInitiation, i.Unmarshal(b), func() []byte { return i.MarshalTo(buf) }},
			{TypeResponse, r.Unmarshal(b), func() []byte { return r.MarshalTo(buf) }},
			{TypeCookieReply, c.Unmarshal(b), func() []byte { return c.MarshalTo(buf) }},
		}
		for _, ch := range checks {
			if (ch.err == nil) != (typ == ch.typ) {
				t.Fatalf("Unmarshal as type %d = %v, but Classify = %d, %v", ch.typ, ch.err, typ, classifyErr)
			}
			if ch.err != nil {
				continue
			}
			if got := ch.roundTrip(); !bytes.Equal(got, b) {
				t.Fatalf("MarshalTo(Unmarshal(b)) =\n%x\nwant\n%x", got, b)
			}
		}

		receiver, counter, err := ParseTransportHeader(b)
		if (err == nil) != (typ == TypeTransport) {
			t.Fatalf("ParseTransportHeader = %v, but Classify = %d, %v", err, typ, classifyErr)
		}
		if err == nil {
			out := bytes.Clone(b)
			PutTransportHeader(out, receiver, counter)
			if !bytes.Equal(out, b) {
				t.Fatalf("PutTransportHeader(ParseTransportHeader(b)) =\n%x\nwant\n%x", out[:TransportHeaderSize], b[:TransportHeaderSize])
			}
		}
	})
}
