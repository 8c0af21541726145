package crypto

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// windowSize is the replay window of golang.zx2c4.com/wireguard/replay:
// 127 blocks of 64 counters.
const windowSize = 8128

// testKeypairs returns the two ends of a session without a handshake.
func testKeypairs() (initiator, responder *Keypair) {
	k1, k2 := [KeySize]byte(testKey("k1")), [KeySize]byte(testKey("k2"))
	return newKeypair(&k1, &k2, true), newKeypair(&k2, &k1, false)
}

func TestSealOpenInPlace(t *testing.T) {
	a, b := testKeypairs()
	buf := make([]byte, 1420, 1420+TagSize)
	for i := range buf {
		buf[i] = byte(i)
	}
	want := bytes.Clone(buf)
	ct := a.Seal(buf[:0], 7, buf)
	if &ct[0] != &buf[0] || len(ct) != len(want)+TagSize {
		t.Fatalf("Seal in place: got len %d at a new array, want %d in place", len(ct), len(want)+TagSize)
	}
	sealed := bytes.Clone(ct)
	pt, err := b.Open(ct[:0], 7, ct)
	if err != nil || !bytes.Equal(pt, want) || &pt[0] != &buf[0] {
		t.Fatalf("Open in place: got %d bytes, %v, want the plaintext in place", len(pt), err)
	}

	tests := []struct {
		name    string
		kp      *Keypair
		counter uint64
		mutate  func([]byte) []byte
	}{
		{"wrong counter", b, 8, func(c []byte) []byte { return c }},
		{"wrong direction", a, 7, func(c []byte) []byte { return c }},
		{"flipped byte", b, 7, func(c []byte) []byte { c[100] ^= 1; return c }},
		{"flipped tag", b, 7, func(c []byte) []byte { c[len(c)-1] ^= 0x80; return c }},
		{"truncated", b, 7, func(c []byte) []byte { return c[:len(c)-1] }},
	}
	for _, tc := range tests {
		c := tc.mutate(bytes.Clone(sealed))
		if _, err := tc.kp.Open(c[:0], tc.counter, c); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: got %v, want ErrDecrypt", tc.name, err)
		}
	}
	for n := range TagSize {
		if _, err := b.Open(nil, 7, sealed[:n]); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%d-byte ciphertext: got %v, want ErrDecrypt", n, err)
		}
	}
}

func TestKeepalive(t *testing.T) {
	a, b := testKeypairs()
	ct := a.Seal(nil, 0, nil)
	if len(ct) != TagSize {
		t.Fatalf("keepalive: got %d bytes, want %d", len(ct), TagSize)
	}
	if pt, err := b.Open(nil, 0, ct); err != nil || len(pt) != 0 {
		t.Fatalf("keepalive Open: got %d bytes, %v, want 0, nil", len(pt), err)
	}
}

func TestSendCounter(t *testing.T) {
	a, _ := testKeypairs()
	for want := range uint64(3) {
		if got, ok := a.NextSendCounter(); !ok || got != want {
			t.Fatalf("NextSendCounter: got %d, %v, want %d, true", got, ok, want)
		}
	}
	if got := a.SendCount(); got != 3 {
		t.Fatalf("SendCount: got %d, want 3", got)
	}
	a.sendCounter.Store(RejectAfterMessages - 1)
	if got, ok := a.NextSendCounter(); !ok || got != RejectAfterMessages-1 {
		t.Fatalf("last counter: got %d, %v, want %d, true", got, ok, uint64(RejectAfterMessages-1))
	}
	for range 3 {
		if _, ok := a.NextSendCounter(); ok {
			t.Fatal("counter at RejectAfterMessages: got ok, want false")
		}
	}
}

// TestReplayWindow covers the cases by name; TestReplayWindowReference
// then compares with a slow reference on random traffic.
func TestReplayWindow(t *testing.T) {
	type step struct {
		counter uint64
		want    bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first packets", []step{{0, true}, {1, true}, {2, true}}},
		{"replay", []step{{0, true}, {0, false}, {1, true}, {1, false}, {0, false}}},
		{"reorder inside window", []step{{10, true}, {5, true}, {9, true}, {0, true}, {5, false}, {11, true}, {10, false}}},
		{"exactly window behind", []step{{windowSize + 100, true}, {100, true}, {100, false}}},
		{"more than window behind", []step{{windowSize + 100, true}, {99, false}, {0, false}}},
		{"big jump clears ring", []step{{1, true}, {1 << 40, true}, {1<<40 - 1, true}, {1, false}, {1 << 40, false}}},
		{"reject limit", []step{{RejectAfterMessages - 1, true}, {RejectAfterMessages, false}, {1<<64 - 1, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, kp := testKeypairs()
			for i, s := range tc.steps {
				if got := kp.AcceptCounter(s.counter); got != s.want {
					t.Fatalf("step %d, counter %d: got %v, want %v", i, s.counter, got, s.want)
				}
			}
		})
	}
}

// referenceWindow is the replay rule stated plainly: a counter is accepted
// once, if below the limit and no more than the window behind the newest.
type referenceWindow struct {
	seen   map[uint64]bool
	newest uint64
}

func (r *referenceWindow) accept(c uint64) bool {
	if c >= RejectAfterMessages || r.seen[c] || (c < r.newest && r.newest-c > windowSize) {
		return false
	}
	r.seen[c] = true
	r.newest = max(r.newest, c)
	return true
}

func TestReplayWindowReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 20 {
		_, kp := testKeypairs()
		ref := &referenceWindow{seen: map[uint64]bool{}}
		var next uint64
		for i := range 20000 {
			var c uint64
			switch r := rng.IntN(100); {
			case r < 60: // in order, sometimes skipping
				next += uint64(rng.IntN(3))
				c = next
			case r < 90: // late, around the edge of the window
				c = next - min(next, uint64(rng.IntN(2*windowSize)))
			case r < 99: // duplicate of something recent
				c = next - min(next, uint64(rng.IntN(64)))
			default: // a jump ahead
				next += uint64(rng.IntN(3 * windowSize))
				c = next
			}
			if got, want := kp.AcceptCounter(c), ref.accept(c); got != want {
				t.Fatalf("run %d step %d counter %d (newest %d): got %v, want %v", run, i, c, ref.newest, got, want)
			}
		}
	}
}

// TestNoAllocs checks the per-packet functions allocate nothing.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	a, b := testKeypairs()
	buf := make([]byte, 1420+TagSize)
	sealed := a.Seal(nil, 1, buf[:1420])
	checker := NewCookieChecker(testKey("b").PublicKey())
	msg := make([]byte, 148)
	NewCookieGenerator(testKey("b").PublicKey()).AddMACs(msg, t0)
	var ctr uint64
	tests := []struct {
		name string
		fn   func()
	}{
		{"Seal", func() { a.Seal(buf[:0], 1, buf[:1420]) }},
		{"Open", func() {
			copy(buf, sealed)
			if _, err := b.Open(buf[:0], 1, buf); err != nil {
				panic(err)
			}
		}},
		{"Open failure", func() { b.Open(buf[:0], 2, buf) }},
		{"NextSendCounter", func() { a.NextSendCounter() }},
		{"AcceptCounter", func() { ctr++; b.AcceptCounter(ctr) }},
		{"CheckMAC1", func() {
			if !checker.CheckMAC1(msg) {
				panic("mac1")
			}
		}},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(1000, tc.fn); n != 0 {
			t.Errorf("%s: got %v allocs, want 0", tc.name, n)
		}
	}
}

func BenchmarkSeal1420(b *testing.B) {
	b.ReportAllocs()
	kp, _ := testKeypairs()
	buf := make([]byte, 1420+TagSize)
	b.SetBytes(1420)
	for b.Loop() {
		ctr, _ := kp.NextSendCounter()
		kp.Seal(buf[:0], ctr, buf[:1420])
	}
}

func BenchmarkOpen1420(b *testing.B) {
	b.ReportAllocs()
	send, recv := testKeypairs()
	sealed := send.Seal(nil, 0, make([]byte, 1420))
	buf := make([]byte, len(sealed))
	b.SetBytes(1420)
	for b.Loop() {
		copy(buf, sealed) // Open works in place, so restore the ciphertext
		if _, err := recv.Open(buf[:0], 0, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAcceptCounter(b *testing.B) {
	b.ReportAllocs()
	_, kp := testKeypairs()
	var c uint64
	for b.Loop() {
		c++
		kp.AcceptCounter(c)
	}
}
