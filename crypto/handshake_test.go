package crypto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
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
	reproducible(p.ab, "a")
	reproducible(p.ba, "b")
	return p
}

// reproducible makes h draw its ephemeral keys from a fixed sequence, so
// that failures and fuzz corpora reproduce. The sequence still differs
// from call to call, as real ephemerals do.
func reproducible(h *Handshake, seed string) {
	var n atomic.Uint64
	h.newEphemeral = func() (PrivateKey, error) {
		return testKey(fmt.Sprint(seed, " ephemeral ", n.Add(1))), nil
	}
}

// staticSecret computes h's static-static secret, as a handshake would on
// first use, and returns it for tests of the generic core.
func staticSecret(t testing.TB, h *Handshake) *[KeySize]byte {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.staticSecretLocked(); err != nil {
		t.Fatal(err)
	}
	return &h.ss
}

// lookupOnly is a peer table that knows one peer, key, with state hs.
func lookupOnly(key PublicKey, hs *Handshake) func(PublicKey) *Handshake {
	return func(k PublicKey) *Handshake {
		if k.Equal(key) {
			return hs
		}
		return nil
	}
}

// lookupB is b's peer table: it knows a only.
func (p *testPeers) lookupB(k PublicKey) *Handshake { return lookupOnly(p.a.PublicKey(), p.ba)(k) }

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
			init, err := p.ba.CreateInitiation(t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.a.ConsumeInitiation(&init, t0.Add(time.Minute), lookupOnly(p.b.PublicKey(), p.ab)); err != nil {
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
