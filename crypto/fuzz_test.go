package crypto

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// Fuzz targets for every function that takes bytes from the network. None
// may panic; every rejection must be the documented sentinel; and only the
// genuine message (the first seed) may ever be accepted. Keys, ephemerals
// and cookie randomness are fixed, because every fuzzing process runs the
// setup and must arrive at the same genuine message.

func initiationBytes(m *Initiation) []byte {
	return concat(m.Ephemeral[:], m.Static[:], m.Timestamp[:])
}

// take copies the next len(dst) bytes of *data into dst, as many as remain.
func take(dst []byte, data *[]byte) {
	n := copy(dst, *data)
	*data = (*data)[n:]
}

func FuzzConsumeInitiation(f *testing.F) {
	p := newTestPeers(f, PresharedKey{})
	init, err := p.ab.CreateInitiation(t0)
	if err != nil {
		f.Fatal(err)
	}
	valid := initiationBytes(&init)
	f.Add(valid)
	f.Add(valid[:KeySize+EncryptedStatic])
	f.Add(make([]byte, 148))
	f.Add([]byte{})
	low := bytes.Clone(valid)
	lowKey := mustHexKey(f, lowOrderHex[2])
	copy(low, lowKey[:])
	f.Add(low)
	checker := NewCookieChecker(p.b.PublicKey())

	f.Fuzz(func(t *testing.T, data []byte) {
		_ = checker.CheckMAC1(data)
		var msg Initiation
		rest := data
		take(msg.Ephemeral[:], &rest)
		take(msg.Static[:], &rest)
		take(msg.Timestamp[:], &rest)

		// A fresh handshake each time, so that one input's timestamp does
		// not decide the next input's fate.
		hs, err := p.b.NewHandshake(p.a.PublicKey(), PresharedKey{})
		if err != nil {
			t.Fatal(err)
		}
		reproducible(hs, "fuzz")
		got, err := p.b.ConsumeInitiation(&msg, t0, lookupOnly(p.a.PublicKey(), hs))
		switch {
		case err == nil:
			if got != hs || !bytes.Equal(initiationBytes(&msg), valid) {
				t.Fatalf("accepted a forged initiation %x", initiationBytes(&msg))
			}
		case !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownPeer):
			t.Fatalf("got %v, want ErrDecrypt or ErrUnknownPeer", err)
		}

		// The generic core with a payload of any length.
		if len(data) < KeySize+EncryptedStatic {
			return
		}
		m := messageOne{ephemeral: msg.Ephemeral, static: msg.Static, payload: data[KeySize+EncryptedStatic:]}
		st := p.b.responder
		if _, err := st.readMessageOneStatic(p.b, &m); err != nil {
			return
		}
		if _, err := st.readMessageOnePayload(nil, staticSecret(t, hs), &m); err != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("readMessageOnePayload: got %v, want ErrDecrypt", err)
		}
	})
}

func FuzzConsumeResponse(f *testing.F) {
	p := newTestPeers(f, PresharedKey(testKey("psk")))
	init, _ := p.ab.CreateInitiation(t0)
	if _, err := p.b.ConsumeInitiation(&init, t0, p.lookupB); err != nil {
		f.Fatal(err)
	}
	resp, err := p.ba.CreateResponse()
	if err != nil {
		f.Fatal(err)
	}
	valid := concat(resp.Ephemeral[:], resp.Empty[:])
	f.Add(valid)
	f.Add(valid[:KeySize])
	f.Add(make([]byte, 92))
	f.Add([]byte{})

	// Remember the "initiation created" state, to return to it after the
	// genuine response is accepted.
	p.ab.mu.Lock()
	saved, savedE := p.ab.noise, p.ab.ephemeral
	p.ab.mu.Unlock()
	rearm := func() {
		p.ab.mu.Lock()
		p.ab.noise, p.ab.ephemeral, p.ab.state = saved, savedE, stateInitiationCreated
		p.ab.mu.Unlock()
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var msg Response
		rest := data
		take(msg.Ephemeral[:], &rest)
		take(msg.Empty[:], &rest)
		err := p.ab.ConsumeResponse(&msg)
		switch {
		case err == nil:
			if !bytes.Equal(concat(msg.Ephemeral[:], msg.Empty[:]), valid) {
				t.Fatalf("accepted a forged response %x", data)
			}
			rearm()
		case !errors.Is(err, ErrDecrypt):
			t.Fatalf("got %v, want ErrDecrypt", err)
		}

		// The generic core with a payload of any length.
		if len(data) < KeySize {
			return
		}
		st := saved
		m := messageTwo{ephemeral: msg.Ephemeral, payload: data[KeySize:]}
		psk := PresharedKey(testKey("psk"))
		if _, err := st.readMessageTwo(nil, p.a, &savedE, &psk, &m); err != nil && !errors.Is(err, ErrDecrypt) {
			t.Fatalf("readMessageTwo: got %v, want ErrDecrypt", err)
		}
	})
}

func FuzzCookieReply(f *testing.F) {
	local := testKey("responder").PublicKey()
	checker := NewCookieChecker(local)
	// The seeds must be the same in every fuzzing process.
	checker.random = rand.NewChaCha8([32]byte{1})
	gen := NewCookieGenerator(local)
	msg := testMessage(11)
	gen.AddMACs(msg, t0)
	reply, err := checker.CreateReply(msg, srcA, t0)
	if err != nil {
		f.Fatal(err)
	}
	valid := concat(reply.Nonce[:], reply.Cookie[:])
	f.Add(valid)
	f.Add(valid[:CookieNonceSize])
	f.Add(make([]byte, 64))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		var r CookieReply
		rest := data
		take(r.Nonce[:], &rest)
		take(r.Cookie[:], &rest)
		switch err := gen.ConsumeReply(&r, t0); {
		case err == nil:
			if !bytes.Equal(concat(r.Nonce[:], r.Cookie[:]), valid) {
				t.Fatalf("accepted a forged cookie reply %x", data)
			}
			gen.AddMACs(msg, t0) // expect a reply again
		case !errors.Is(err, ErrDecrypt):
			t.Fatalf("got %v, want ErrDecrypt", err)
		}

		// The responder side on arbitrary messages and sources.
		_ = checker.CheckMAC1(data)
		_ = checker.CheckMAC2(data, data, t0)
		if _, err := checker.CreateReply(data, data, t0); err != nil && !errors.Is(err, ErrShortMessage) {
			t.Fatalf("CreateReply: got %v, want nil or ErrShortMessage", err)
		}
	})
}
