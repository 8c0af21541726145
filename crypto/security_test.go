package crypto

import (
	"errors"
	"testing"
	"time"
)

// The handshake's security properties, each able to fail: replayed and
// flooded initiations, forged and garbled fields, and low-order keys.

// TestReplayedInitiation checks that an initiation seen before, or one
// older than the last accepted, is refused and leaves the session that is
// in progress intact.
func TestReplayedInitiation(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	old, _ := p.ab.CreateInitiation(t0)
	init, _ := p.ab.CreateInitiation(t0.Add(time.Second))
	if _, err := p.b.ConsumeInitiation(&init, t0.Add(time.Second), p.lookupB); err != nil {
		t.Fatal(err)
	}
	resp, err := p.ba.CreateResponse()
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		msg  Initiation
	}{{"same", init}, {"older", old}} {
		// Far later, so that only the timestamp can be the reason.
		hs, err := p.b.ConsumeInitiation(&tc.msg, t0.Add(time.Hour), p.lookupB)
		if !errors.Is(err, ErrStaleTimestamp) || hs != nil {
			t.Fatalf("%s: got %p, %v, want nil, ErrStaleTimestamp", tc.name, hs, err)
		}
	}
	// b is still in "response created" for the genuine initiation.
	if err := p.ab.ConsumeResponse(&resp); err != nil {
		t.Fatal(err)
	}
	ka, _ := p.ab.DeriveKeys()
	kb, err := p.ba.DeriveKeys()
	if err != nil {
		t.Fatalf("responder DeriveKeys after replays: got %v, want nil", err)
	}
	checkKeypairs(t, ka, kb)

	// And after the session is established, the replay is refused too.
	if _, err := p.b.ConsumeInitiation(&init, t0.Add(2*time.Hour), p.lookupB); !errors.Is(err, ErrStaleTimestamp) {
		t.Fatalf("replay after session: got %v, want ErrStaleTimestamp", err)
	}
	if _, err := p.ba.CreateResponse(); !errors.Is(err, ErrBadState) {
		t.Fatalf("CreateResponse after refused replay: got %v, want ErrBadState", err)
	}
}

func TestInitiationFlood(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	first, _ := p.ab.CreateInitiation(t0)
	second, _ := p.ab.CreateInitiation(t0)
	third, _ := p.ab.CreateInitiation(t0)
	if _, err := p.b.ConsumeInitiation(&first, t0, p.lookupB); err != nil {
		t.Fatal(err)
	}
	if _, err := p.b.ConsumeInitiation(&second, t0.Add(HandshakeInitiationRate/2), p.lookupB); !errors.Is(err, ErrFlood) {
		t.Fatalf("initiation after %v: got %v, want ErrFlood", HandshakeInitiationRate/2, err)
	}
	if _, err := p.b.ConsumeInitiation(&third, t0.Add(HandshakeInitiationRate), p.lookupB); err != nil {
		t.Fatalf("initiation after %v: got %v, want nil", HandshakeInitiationRate, err)
	}
}

// TestGarbledInitiation flips every bit of the Noise fields: each must
// give ErrDecrypt, and none may change the responder's state.
func TestGarbledInitiation(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	init, _ := p.ab.CreateInitiation(t0)
	fields := []struct {
		name string
		b    []byte
	}{{"ephemeral", init.Ephemeral[:]}, {"static", init.Static[:]}, {"timestamp", init.Timestamp[:]}}
	for _, f := range fields {
		for i := range len(f.b) * 8 {
			f.b[i/8] ^= 1 << (i % 8)
			_, err := p.b.ConsumeInitiation(&init, t0, p.lookupB)
			f.b[i/8] ^= 1 << (i % 8)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%s bit %d flipped: got %v, want ErrDecrypt", f.name, i, err)
			}
		}
	}
	// The genuine initiation still works: nothing above touched the state.
	if _, err := p.b.ConsumeInitiation(&init, t0, p.lookupB); err != nil {
		t.Fatalf("genuine initiation after garbled ones: got %v, want nil", err)
	}
}

func TestGarbledResponse(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	init, _ := p.ab.CreateInitiation(t0)
	p.b.ConsumeInitiation(&init, t0, p.lookupB)
	resp, _ := p.ba.CreateResponse()
	for _, f := range []struct {
		name string
		b    []byte
	}{{"ephemeral", resp.Ephemeral[:]}, {"empty", resp.Empty[:]}} {
		for i := range len(f.b) * 8 {
			f.b[i/8] ^= 1 << (i % 8)
			err := p.ab.ConsumeResponse(&resp)
			f.b[i/8] ^= 1 << (i % 8)
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("%s bit %d flipped: got %v, want ErrDecrypt", f.name, i, err)
			}
		}
	}
	if err := p.ab.ConsumeResponse(&resp); err != nil {
		t.Fatalf("genuine response after garbled ones: got %v, want nil", err)
	}
}

// TestTruncatedPayload runs the generic core with payloads shorter than a
// tag, which WireGuard's fixed-size structs cannot express.
func TestTruncatedPayload(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	e := testKey("eph")
	for n := range TagSize + 1 {
		st := newSymmetricState(wireguardPrologue, p.b.public)
		m, err := st.writeMessageOne(p.a, &e, p.b.public, staticSecret(t, p.ab), nil)
		if err != nil {
			t.Fatal(err)
		}
		m.payload = m.payload[:n]
		rst := p.b.responder
		if _, err := rst.readMessageOneStatic(p.b, &m); err != nil {
			t.Fatal(err)
		}
		_, err = rst.readMessageOnePayload(nil, staticSecret(t, p.ba), &m)
		if n < TagSize && !errors.Is(err, ErrDecrypt) {
			t.Errorf("payload of %d bytes: got %v, want ErrDecrypt", n, err)
		}
		if n == TagSize && err != nil {
			t.Errorf("payload of %d bytes (the tag): got %v, want nil", n, err)
		}
		var m2 messageTwo
		m2.payload = make([]byte, n)
		if _, err := st.readMessageTwo(nil, p.a, &e, &PresharedKey{}, &m2); !errors.Is(err, ErrDecrypt) {
			t.Errorf("response payload of %d bytes: got %v, want ErrDecrypt", n, err)
		}
	}
}

func TestLowOrderEphemeral(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	init, _ := p.ab.CreateInitiation(t0)
	p.b.ConsumeInitiation(&init, t0, p.lookupB)
	resp, _ := p.ba.CreateResponse()
	for _, s := range lowOrderHex {
		e := PublicKey(mustHexKey(t, s))
		bad := init
		bad.Ephemeral = e
		_, err := p.b.ConsumeInitiation(&bad, t0.Add(time.Hour), p.lookupB)
		if !errors.Is(err, ErrDecrypt) || !errors.Is(err, ErrLowOrderKey) {
			t.Errorf("initiation with ephemeral %s: got %v, want ErrDecrypt and ErrLowOrderKey", s, err)
		}
		badResp := resp
		badResp.Ephemeral = e
		if err := p.ab.ConsumeResponse(&badResp); !errors.Is(err, ErrDecrypt) {
			t.Errorf("response with ephemeral %s: got %v, want ErrDecrypt", s, err)
		}
	}
}
