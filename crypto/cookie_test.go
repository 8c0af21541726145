package crypto

import (
	"errors"
	"testing"
	"time"
)

// testMessage returns a fake marshalled initiation: 148 bytes of which the
// last 32 are the MACs.
func testMessage(seed byte) []byte {
	msg := make([]byte, 148)
	for i := range msg[:116] {
		msg[i] = seed + byte(i)
	}
	return msg
}

var (
	srcA = []byte{192, 0, 2, 1, 0xca, 0x6c}   // 192.0.2.1:51820
	srcB = []byte{192, 0, 2, 200, 0xca, 0x6c} // 192.0.2.200:51820
)

func TestMAC1(t *testing.T) {
	local := testKey("responder").PublicKey()
	checker := NewCookieChecker(local)
	gen := NewCookieGenerator(local)
	msg := testMessage(1)
	gen.AddMACs(msg, t0)
	if !checker.CheckMAC1(msg) {
		t.Fatal("CheckMAC1 of a generated message: got false, want true")
	}
	// mac1 covers everything before it, and is itself checked.
	for i := range len(msg) - MACSize {
		msg[i] ^= 0x40
		if checker.CheckMAC1(msg) {
			t.Fatalf("byte %d flipped: CheckMAC1 got true, want false", i)
		}
		msg[i] ^= 0x40
	}
	other := NewCookieGenerator(testKey("someone else").PublicKey())
	other.AddMACs(msg, t0)
	if checker.CheckMAC1(msg) {
		t.Fatal("mac1 for another key: got true, want false")
	}
	for n := range 2*MACSize + 1 {
		short := make([]byte, n)
		gen.AddMACs(short, t0) // must not panic
		_ = checker.CheckMAC1(short)
		if checker.CheckMAC2(short, srcA, t0) {
			t.Errorf("CheckMAC2 of %d bytes: got true, want false", n)
		}
		if _, err := checker.CreateReply(short, srcA, t0); n < 2*MACSize && !errors.Is(err, ErrShortMessage) {
			t.Errorf("CreateReply of %d bytes: got %v, want ErrShortMessage", n, err)
		}
	}
}

// cookieRoundTrip sends msg from gen to checker at now, gets a cookie
// reply and feeds it back, then re-MACs msg as the retry would be.
func cookieRoundTrip(t *testing.T, checker *CookieChecker, gen *CookieGenerator, msg, src []byte, now time.Time) {
	t.Helper()
	gen.AddMACs(msg, now)
	reply, err := checker.CreateReply(msg, src, now)
	if err != nil {
		t.Fatalf("CreateReply: %v", err)
	}
	if err := gen.ConsumeReply(&reply, now); err != nil {
		t.Fatalf("ConsumeReply: %v", err)
	}
	gen.AddMACs(msg, now)
}

func TestMAC2(t *testing.T) {
	local := testKey("responder").PublicKey()
	checker := NewCookieChecker(local)
	gen := NewCookieGenerator(local)
	msg := testMessage(2)

	gen.AddMACs(msg, t0)
	if checker.CheckMAC2(msg, srcA, t0) {
		t.Fatal("CheckMAC2 without a cookie: got true, want false")
	}
	cookieRoundTrip(t, checker, gen, msg, srcA, t0)
	if !checker.CheckMAC1(msg) || !checker.CheckMAC2(msg, srcA, t0) {
		t.Fatal("after a cookie reply: got mac1/mac2 invalid, want both valid")
	}
	if checker.CheckMAC2(msg, srcB, t0) {
		t.Fatal("cookie used from another source: got true, want false")
	}
	msg[len(msg)-1] ^= 1
	if checker.CheckMAC2(msg, srcA, t0) {
		t.Fatal("flipped mac2: got true, want false")
	}
	msg[len(msg)-1] ^= 1

	// The generator uses a cookie for less than CookieRefreshTime.
	gen.AddMACs(msg, t0.Add(CookieRefreshTime-time.Second))
	if !checker.CheckMAC2(msg, srcA, t0.Add(CookieRefreshTime-time.Second)) {
		t.Fatal("cookie 119 s old: got no valid mac2, want one")
	}
	// The checker, too, lets a secret lapse after CookieRefreshTime, even
	// when no reply has replaced it.
	if checker.CheckMAC2(msg, srcA, t0.Add(CookieRefreshTime)) {
		t.Fatal("mac2 from a 120 s old secret: got valid, want invalid")
	}
	gen.AddMACs(msg, t0.Add(CookieRefreshTime))
	if checker.CheckMAC2(msg, srcA, t0.Add(CookieRefreshTime)) || !isZero(msg[len(msg)-MACSize:]) {
		t.Fatal("cookie 120 s old: got mac2 set, want zeros")
	}
}

func TestCookieSecretRotation(t *testing.T) {
	local := testKey("responder").PublicKey()
	checker := NewCookieChecker(local)
	gen := NewCookieGenerator(local)
	msg := testMessage(3)
	cookieRoundTrip(t, checker, gen, msg, srcA, t0)
	first := gen.cookie

	// Within the refresh time the secret, and so the cookie, is the same.
	cookieRoundTrip(t, checker, gen, testMessage(4), srcA, t0.Add(CookieRefreshTime-time.Second))
	if gen.cookie != first {
		t.Fatal("cookie changed before CookieRefreshTime")
	}
	// Past it, a reply to anyone rotates the secret, and cookies made
	// from the old one stop working at once.
	other := NewCookieGenerator(local)
	cookieRoundTrip(t, checker, other, testMessage(5), srcB, t0.Add(CookieRefreshTime+time.Second))
	if checker.CheckMAC2(msg, srcA, t0.Add(CookieRefreshTime+time.Second)) {
		t.Fatal("cookie from a rotated secret: got valid, want invalid")
	}
	cookieRoundTrip(t, checker, gen, msg, srcA, t0.Add(CookieRefreshTime+2*time.Second))
	if gen.cookie == first || !checker.CheckMAC2(msg, srcA, t0.Add(CookieRefreshTime+2*time.Second)) {
		t.Fatal("after rotation: want a new, valid cookie")
	}
}

func TestConsumeReplyRejects(t *testing.T) {
	local := testKey("responder").PublicKey()
	checker := NewCookieChecker(local)
	gen := NewCookieGenerator(local)
	msg := testMessage(6)
	gen.AddMACs(msg, t0)
	reply, _ := checker.CreateReply(msg, srcA, t0)

	fresh := NewCookieGenerator(local)
	if err := fresh.ConsumeReply(&reply, t0); !errors.Is(err, ErrUnexpectedCookie) {
		t.Errorf("reply before sending anything: got %v, want ErrUnexpectedCookie", err)
	}
	for i := range len(reply.Nonce) + len(reply.Cookie) {
		bad := reply
		if i < len(bad.Nonce) {
			bad.Nonce[i] ^= 1
		} else {
			bad.Cookie[i-len(bad.Nonce)] ^= 1
		}
		if err := gen.ConsumeReply(&bad, t0); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("byte %d flipped: got %v, want ErrDecrypt", i, err)
		}
	}
	// A reply to an earlier message does not fit the last mac1.
	gen.AddMACs(testMessage(7), t0)
	if err := gen.ConsumeReply(&reply, t0); !errors.Is(err, ErrDecrypt) {
		t.Errorf("reply to an older message: got %v, want ErrDecrypt", err)
	}
	gen.AddMACs(msg, t0)
	if err := gen.ConsumeReply(&reply, t0); err != nil {
		t.Fatalf("genuine reply: got %v, want nil", err)
	}
	if err := gen.ConsumeReply(&reply, t0); !errors.Is(err, ErrUnexpectedCookie) {
		t.Errorf("second reply to one message: got %v, want ErrUnexpectedCookie", err)
	}
	wrongKey := NewCookieGenerator(testKey("someone else").PublicKey())
	wrongKey.AddMACs(msg, t0)
	if err := wrongKey.ConsumeReply(&reply, t0); !errors.Is(err, ErrDecrypt) {
		t.Errorf("reply sealed for another key: got %v, want ErrDecrypt", err)
	}
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func BenchmarkCheckMAC1(b *testing.B) {
	b.ReportAllocs()
	local := testKey("responder").PublicKey()
	checker := NewCookieChecker(local)
	msg := testMessage(8)
	NewCookieGenerator(local).AddMACs(msg, t0)
	for b.Loop() {
		if !checker.CheckMAC1(msg) {
			b.Fatal("mac1")
		}
	}
}
