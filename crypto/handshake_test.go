package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
)

// testPeers is two identities, a and b, each with a Handshake for the other.
type testPeers struct {
	a, b   *Identity
	ab, ba *Handshake // ab is a's state with b, ba is b's state with a
}

func newTestPeers(t testing.TB, psk PresharedKey) *testPeers {
	t.Helper()
	p := &testPeers{a: NewIdentity(testKey("a")), b: NewIdentity(testKey("b"))}
	var err error
	if p.ab, err = p.a.NewHandshake(p.b.PublicKey(), psk); err != nil {
		t.Fatal(err)
	}
	if p.ba, err = p.b.NewHandshake(p.a.PublicKey(), psk); err != nil {
		t.Fatal(err)
	}
	return p
}

// lookupB is b's peer table: it knows a only.
func (p *testPeers) lookupB(k PublicKey) *Handshake {
	if k.Equal(p.a.PublicKey()) {
		return p.ba
	}
	return nil
}

// handshake runs a complete handshake initiated by a at now.
func (p *testPeers) handshake(t testing.TB, now time.Time) (ka, kb *Keypair) {
	t.Helper()
	init, err := p.ab.CreateInitiation(now)
	if err != nil {
		t.Fatalf("CreateInitiation: %v", err)
	}
	hs, err := p.b.ConsumeInitiation(&init, now, p.lookupB)
	if err != nil {
		t.Fatalf("ConsumeInitiation: %v", err)
	}
	if hs != p.ba {
		t.Fatalf("ConsumeInitiation: got handshake %p, want %p", hs, p.ba)
	}
	resp, err := p.ba.CreateResponse()
	if err != nil {
		t.Fatalf("CreateResponse: %v", err)
	}
	if err := p.ab.ConsumeResponse(&resp); err != nil {
		t.Fatalf("ConsumeResponse: %v", err)
	}
	if ka, err = p.ab.DeriveKeys(); err != nil {
		t.Fatalf("initiator DeriveKeys: %v", err)
	}
	if kb, err = p.ba.DeriveKeys(); err != nil {
		t.Fatalf("responder DeriveKeys: %v", err)
	}
	return ka, kb
}

// checkKeypairs seals a packet each way and checks the other side opens it.
func checkKeypairs(t testing.TB, ka, kb *Keypair) {
	t.Helper()
	for _, dir := range []struct {
		name     string
		from, to *Keypair
	}{{"a->b", ka, kb}, {"b->a", kb, ka}} {
		msg := []byte("packet " + dir.name)
		ctr, _ := dir.from.NextSendCounter()
		ct := dir.from.Seal(nil, ctr, msg)
		pt, err := dir.to.Open(nil, ctr, ct)
		if err != nil || !bytes.Equal(pt, msg) {
			t.Fatalf("%s: Open got %q, %v, want %q", dir.name, pt, err, msg)
		}
		if !dir.to.AcceptCounter(ctr) {
			t.Fatalf("%s: AcceptCounter(%d) got false, want true", dir.name, ctr)
		}
	}
}

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func TestHandshake(t *testing.T) {
	for _, psk := range []PresharedKey{{}, PresharedKey(testKey("psk"))} {
		t.Run(fmt.Sprintf("psk=%v", !psk.IsZero()), func(t *testing.T) {
			p := newTestPeers(t, psk)
			ka, kb := p.handshake(t, t0)
			if !ka.IsInitiator() || kb.IsInitiator() {
				t.Fatalf("IsInitiator: got %v/%v, want true/false", ka.IsInitiator(), kb.IsInitiator())
			}
			checkKeypairs(t, ka, kb)

			// A second handshake, the other way round, gives new keys.
			lookupA := func(k PublicKey) *Handshake {
				if k.Equal(p.b.PublicKey()) {
					return p.ab
				}
				return nil
			}
			init, err := p.ba.CreateInitiation(t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.a.ConsumeInitiation(&init, t0.Add(time.Minute), lookupA); err != nil {
				t.Fatalf("reverse ConsumeInitiation: %v", err)
			}
			resp, _ := p.ab.CreateResponse()
			if err := p.ba.ConsumeResponse(&resp); err != nil {
				t.Fatalf("reverse ConsumeResponse: %v", err)
			}
			kb2, _ := p.ba.DeriveKeys()
			ka2, _ := p.ab.DeriveKeys()
			checkKeypairs(t, ka2, kb2)
			if _, err := ka2.Open(nil, 0, ka.Seal(nil, 0, []byte("x"))); err == nil {
				t.Fatal("keys of two sessions are the same")
			}
		})
	}
}

func TestPresharedKeyMismatch(t *testing.T) {
	p := newTestPeers(t, PresharedKey(testKey("psk a")))
	var err error
	if p.ba, err = p.b.NewHandshake(p.a.PublicKey(), PresharedKey(testKey("psk b"))); err != nil {
		t.Fatal(err)
	}
	init, _ := p.ab.CreateInitiation(t0)
	if _, err := p.b.ConsumeInitiation(&init, t0, p.lookupB); err != nil {
		t.Fatalf("ConsumeInitiation: got %v, want nil (the psk enters only in the response)", err)
	}
	resp, _ := p.ba.CreateResponse()
	if err := p.ab.ConsumeResponse(&resp); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("ConsumeResponse: got %v, want ErrDecrypt", err)
	}
}

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

func TestUnknownPeer(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	init, _ := p.ab.CreateInitiation(t0)
	none := func(PublicKey) *Handshake { return nil }
	if _, err := p.b.ConsumeInitiation(&init, t0, none); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("got %v, want ErrUnknownPeer", err)
	}
	other, _ := p.b.NewHandshake(testKey("c").PublicKey(), PresharedKey{})
	wrong := func(PublicKey) *Handshake { return other }
	if _, err := p.b.ConsumeInitiation(&init, t0, wrong); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("lookup returning another peer: got %v, want ErrUnknownPeer", err)
	}
	// An initiation for somebody else's key fails before any lookup.
	c := NewIdentity(testKey("c"))
	if _, err := c.ConsumeInitiation(&init, t0, p.lookupB); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("initiation to another identity: got %v, want ErrDecrypt", err)
	}
}

func TestBadState(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	if _, err := p.ba.CreateResponse(); !errors.Is(err, ErrBadState) {
		t.Errorf("CreateResponse when zeroed: got %v, want ErrBadState", err)
	}
	if err := p.ab.ConsumeResponse(&Response{}); !errors.Is(err, ErrBadState) {
		t.Errorf("ConsumeResponse when zeroed: got %v, want ErrBadState", err)
	}
	if _, err := p.ab.DeriveKeys(); !errors.Is(err, ErrBadState) {
		t.Errorf("DeriveKeys when zeroed: got %v, want ErrBadState", err)
	}
	init, _ := p.ab.CreateInitiation(t0)
	if _, err := p.ab.DeriveKeys(); !errors.Is(err, ErrBadState) {
		t.Errorf("DeriveKeys after CreateInitiation: got %v, want ErrBadState", err)
	}
	p.b.ConsumeInitiation(&init, t0, p.lookupB)
	if _, err := p.ba.DeriveKeys(); !errors.Is(err, ErrBadState) {
		t.Errorf("DeriveKeys after ConsumeInitiation: got %v, want ErrBadState", err)
	}
	resp, _ := p.ba.CreateResponse()
	if _, err := p.ba.CreateResponse(); !errors.Is(err, ErrBadState) {
		t.Errorf("second CreateResponse: got %v, want ErrBadState", err)
	}
	if err := p.ab.ConsumeResponse(&resp); err != nil {
		t.Fatal(err)
	}
	if err := p.ab.ConsumeResponse(&resp); !errors.Is(err, ErrBadState) {
		t.Errorf("second ConsumeResponse: got %v, want ErrBadState", err)
	}
	p.ab.DeriveKeys()
	if _, err := p.ab.DeriveKeys(); !errors.Is(err, ErrBadState) {
		t.Errorf("second DeriveKeys: got %v, want ErrBadState", err)
	}
	p.ba.Clear()
	if _, err := p.ba.DeriveKeys(); !errors.Is(err, ErrBadState) {
		t.Errorf("DeriveKeys after Clear: got %v, want ErrBadState", err)
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
		m, err := st.writeMessageOne(p.a, &e, p.b.public, &p.ab.ss, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.payload = m.payload[:n]
		rst := p.b.responder
		if _, err := rst.readMessageOneStatic(p.b, &m); err != nil {
			t.Fatal(err)
		}
		_, err = rst.readMessageOnePayload(nil, &p.ba.ss, &m)
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
	for _, s := range lowOrderPoints {
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

func TestTimestamps(t *testing.T) {
	at := time.Unix(1700000000, 999_999_999)
	ts := stamp(at)
	if got, want := binary.BigEndian.Uint64(ts[:8]), uint64(tai64Epoch+1700000000); got != want {
		t.Errorf("seconds: got %#x, want %#x", got, want)
	}
	if got, want := binary.BigEndian.Uint32(ts[8:]), uint32(999_999_999)&^whitenerMask; got != want {
		t.Errorf("nanoseconds: got %d, want %d (whitened)", got, want)
	}
	if got, want := ts.String(), time.Unix(1700000000, int64(999_999_999&^whitenerMask)).String(); got != want {
		t.Errorf("tai64n.String: got %s, want %s", got, want)
	}
	// tai64n.Now and stamp agree on the clock (same second or the next).
	now, mine := tai64n.Now(), stamp(time.Now())
	if d := binary.BigEndian.Uint64(mine[:8]) - binary.BigEndian.Uint64(now[:8]); d > 1 {
		t.Errorf("stamp(time.Now()) is %d s from tai64n.Now()", d)
	}

	// Strictly increasing even with a stuck or backward clock, including
	// the carry into the next second.
	last := stamp(at)
	for i, now := range []time.Time{at, at, at.Add(-time.Hour), at, at.Add(time.Second)} {
		next := nextTimestamp(last, now)
		if !next.After(last) {
			t.Fatalf("step %d: %x is not after %x", i, next, last)
		}
		if n := binary.BigEndian.Uint32(next[8:]); n&whitenerMask != 0 || n >= uint32(time.Second) {
			t.Fatalf("step %d: nanoseconds %d not whitened or out of range", i, n)
		}
		last = next
	}
}

func TestCreateInitiationStrictlyIncreasing(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	for i := range 5 {
		init, _ := p.ab.CreateInitiation(t0) // the same instant every time
		now := t0.Add(time.Duration(i) * time.Second)
		if _, err := p.b.ConsumeInitiation(&init, now, p.lookupB); err != nil {
			t.Fatalf("initiation %d made at the same instant: got %v, want nil", i, err)
		}
	}
}

// TestConcurrentHandshakes exercises the locks under -race.
func TestConcurrentHandshakes(t *testing.T) {
	p := newTestPeers(t, PresharedKey{})
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 20 {
				now := t0.Add(time.Duration(g*100+i) * time.Second)
				init, err := p.ab.CreateInitiation(now)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := p.b.ConsumeInitiation(&init, now, p.lookupB); err == nil {
					if resp, err := p.ba.CreateResponse(); err == nil {
						p.ab.ConsumeResponse(&resp)
						p.ab.DeriveKeys()
						p.ba.DeriveKeys()
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func BenchmarkHandshake(b *testing.B) {
	b.ReportAllocs()
	p := newTestPeers(b, PresharedKey(testKey("psk")))
	now := t0
	for b.Loop() {
		now = now.Add(time.Second)
		init, err := p.ab.CreateInitiation(now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.b.ConsumeInitiation(&init, now, p.lookupB); err != nil {
			b.Fatal(err)
		}
		resp, err := p.ba.CreateResponse()
		if err != nil {
			b.Fatal(err)
		}
		if err := p.ab.ConsumeResponse(&resp); err != nil {
			b.Fatal(err)
		}
		if _, err := p.ab.DeriveKeys(); err != nil {
			b.Fatal(err)
		}
		if _, err := p.ba.DeriveKeys(); err != nil {
			b.Fatal(err)
		}
	}
}
