package crypto

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
)

// lowOrderHex are the canonical encodings of the Curve25519 points of
// order 1, 2, 4 and 8 (libsodium's blocklist). TestLowOrder adds each one
// with the top bit set, which X25519 ignores (RFC 7748 section 5).
var lowOrderHex = []string{
	"0000000000000000000000000000000000000000000000000000000000000000", // 0, order 4
	"0100000000000000000000000000000000000000000000000000000000000000", // 1, order 1
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1, order 2
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p = 0
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 = 1
}

// notLowOrderWhenMasked are x+p for three low-order x. Those encodings are
// at least 2^255, so RFC 7748's masking of the top bit turns them into
// x-19, an ordinary point. Lists for implementations that do not mask
// include them; for X25519 as WireGuard uses it they are ordinary keys.
var notLowOrderWhenMasked = []string{
	"cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
	"4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
	"d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}

func mustHexKey(t testing.TB, s string) [KeySize]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeySize {
		t.Fatalf("bad hex key %q", s)
	}
	return [KeySize]byte(b)
}

// testKey returns a fixed private key for seed, so failures reproduce.
func testKey(seed string) PrivateKey {
	k := PrivateKey(hashSum([]byte("overlay-node test key"), []byte(seed)))
	k.clamp()
	return k
}

// TestPublicKeyRFC7748 checks key derivation against RFC 7748 section 6.1,
// which is also what `wg pubkey` computes.
func TestPublicKeyRFC7748(t *testing.T) {
	for _, tc := range []struct{ priv, pub string }{
		{"77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"},
		{"5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"},
	} {
		priv := PrivateKey(mustHexKey(t, tc.priv))
		want := PublicKey(mustHexKey(t, tc.pub))
		if got := priv.PublicKey(); !got.Equal(want) {
			t.Errorf("PublicKey(%s): got %x, want %x", tc.priv, got[:], want[:])
		}
		if got, want := want.String(), base64.StdEncoding.EncodeToString(want[:]); got != want {
			t.Errorf("String: got %q, want %q", got, want)
		}
	}
}

// TestWGCompatible compares with the real wg(8) when it is installed.
func TestWGCompatible(t *testing.T) {
	wg, err := exec.LookPath("wg")
	if err != nil {
		t.Skip("wg not installed; RFC 7748 vectors cover derivation")
	}
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(wg, "pubkey")
	cmd.Stdin = strings.NewReader(k.Base64() + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wg pubkey: %v", err)
	}
	if got, want := strings.TrimSpace(string(out)), k.PublicKey().String(); got != want {
		t.Errorf("wg pubkey: got %q, want %q", got, want)
	}
	out, err = exec.Command(wg, "genkey").Output()
	if err != nil {
		t.Fatalf("wg genkey: %v", err)
	}
	theirs, err := ParsePrivateKey(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("parse wg genkey output: %v", err)
	}
	if got := theirs.Base64(); got != strings.TrimSpace(string(out)) {
		t.Errorf("Base64 of wg genkey output: got %q, want %q", got, strings.TrimSpace(string(out)))
	}
	cmd = exec.Command(wg, "pubkey")
	cmd.Stdin = bytes.NewReader(out)
	if out, err = cmd.Output(); err != nil {
		t.Fatalf("wg pubkey: %v", err)
	}
	if got, want := theirs.PublicKey().String(), strings.TrimSpace(string(out)); got != want {
		t.Errorf("public key of wg genkey output: got %q, want wg's %q", got, want)
	}
	if out, err = exec.Command(wg, "genpsk").Output(); err != nil {
		t.Fatalf("wg genpsk: %v", err)
	}
	if _, err := ParsePresharedKey(strings.TrimSpace(string(out))); err != nil {
		t.Errorf("parse wg genpsk output: %v", err)
	}
}

func TestGeneratePrivateKey(t *testing.T) {
	a, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GeneratePrivateKey()
	if a.Equal(b) {
		t.Fatal("two generated keys are equal")
	}
	if a[0]&7 != 0 || a[31]&128 != 0 || a[31]&64 == 0 {
		t.Errorf("key not clamped: first byte %#x, last %#x", a[0], a[31])
	}
	back, err := ParsePrivateKey(a.Base64())
	if err != nil || !back.Equal(a) {
		t.Errorf("Base64 round trip: got %v, want the same key", err)
	}
}

func TestParseKeys(t *testing.T) {
	valid := testKey("parse")
	good := valid.Base64()
	nonCanonical := good[:42] + string(flipLowBits(good[42])) + "="
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"valid", good, true},
		{"empty", "", false},
		{"short", good[:43], false},
		{"long", good + "A", false},
		{"no padding", good[:43] + "A", false},
		{"not base64", strings.Repeat("!", 43) + "=", false},
		{"31 bytes", base64.StdEncoding.EncodeToString(make([]byte, 31)) + "A", false}, // "==" then A
		{"non-canonical last char", nonCanonical, false},
		{"newline inside", good[:20] + "\n" + good[21:], false},
		{"trailing newline", good[:43] + "\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errPub := ParsePublicKey(tc.in)
			_, errPriv := ParsePrivateKey(tc.in)
			_, errPSK := ParsePresharedKey(tc.in)
			for _, e := range []struct {
				kind   string
				err    error
				echoes bool
			}{{"public", errPub, true}, {"private", errPriv, false}, {"preshared", errPSK, false}} {
				if (e.err == nil) != tc.ok {
					t.Fatalf("%s: got error %v, want ok=%v", e.kind, e.err, tc.ok)
				}
				if e.err == nil {
					continue
				}
				if !errors.Is(e.err, ErrInvalidKey) {
					t.Errorf("%s: got %v, want it to wrap ErrInvalidKey", e.kind, e.err)
				}
				if len(tc.in) > 4 {
					has := strings.Contains(e.err.Error(), fmt.Sprintf("%q", tc.in))
					if has != e.echoes {
						t.Errorf("%s: error %q contains the input: got %v, want %v", e.kind, e.err, has, e.echoes)
					}
				}
			}
		})
	}
}

func flipLowBits(c byte) byte {
	// In a 44-character key the 43rd character carries 2 unused bits;
	// moving to the next alphabet letter sets the lowest of them.
	i := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", c)
	return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i|1]
}

func TestTextRoundTrip(t *testing.T) {
	pub := testKey("text").PublicKey()
	text, err := pub.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	var got PublicKey
	if err := got.UnmarshalText(text); err != nil || !got.Equal(pub) {
		t.Fatalf("public key round trip: got %v, %v, want %v", got, err, pub)
	}
	priv := testKey("text")
	var gotPriv PrivateKey
	if err := gotPriv.UnmarshalText([]byte(priv.Base64())); err != nil || !gotPriv.Equal(priv) {
		t.Fatalf("private UnmarshalText: got error %v", err)
	}
	var psk PresharedKey
	if err := psk.UnmarshalText([]byte(priv.Base64())); err != nil || !bytes.Equal(psk[:], priv[:]) {
		t.Fatalf("preshared UnmarshalText: got error %v", err)
	}
	if err := psk.UnmarshalText([]byte("bad")); err == nil {
		t.Fatal("UnmarshalText(bad): got nil error")
	}
}

// TestSecretsRedacted checks every route by which a secret key could be
// printed: fmt verbs, nested in structs, slog handlers and JSON.
func TestSecretsRedacted(t *testing.T) {
	priv := testKey("redact")
	psk := PresharedKey(testKey("redact psk"))
	secrets := []string{
		priv.Base64(), hex.EncodeToString(priv[:]), fmt.Sprint([KeySize]byte(priv)),
		base64.StdEncoding.EncodeToString(psk[:]), hex.EncodeToString(psk[:]),
	}
	type holder struct {
		Key PrivateKey
		PSK PresharedKey
	}
	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs = append(outputs, fmt.Sprintf(verb, priv), fmt.Sprintf(verb, psk), fmt.Sprintf(verb, holder{priv, psk}))
	}
	outputs = append(outputs, priv.String(), psk.String())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("k", "priv", priv, "psk", psk, "h", holder{priv, psk})
	slog.New(slog.NewTextHandler(&buf, nil)).Info("k", "priv", priv, "psk", psk)
	outputs = append(outputs, buf.String())
	for _, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("output %q contains the secret", out)
			}
		}
	}
	if priv.String() != "(redacted)" || psk.String() != "(redacted)" {
		t.Errorf("String: got %q and %q, want (redacted)", priv.String(), psk.String())
	}
	if b, err := json.Marshal(holder{priv, psk}); err == nil {
		t.Errorf("json.Marshal of secrets: got %s, want an error", b)
	}
}

func TestEqualIsZero(t *testing.T) {
	a, b := testKey("a"), testKey("b")
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"private equal", a.Equal(a), true},
		{"private differ", a.Equal(b), false},
		{"public equal", a.PublicKey().Equal(a.PublicKey()), true},
		{"public differ", a.PublicKey().Equal(b.PublicKey()), false},
		{"psk equal", PresharedKey(a).Equal(PresharedKey(a)), true},
		{"psk differ last byte", PresharedKey(a).Equal(PresharedKey(func() PrivateKey { c := a; c[31] ^= 1; return c }())), false},
		{"private zero", PrivateKey{}.IsZero(), true},
		{"private nonzero", a.IsZero(), false},
		{"public zero", PublicKey{}.IsZero(), true},
		{"public nonzero", a.PublicKey().IsZero(), false},
		{"psk zero", PresharedKey{}.IsZero(), true},
		{"psk nonzero", PresharedKey{31: 1}.IsZero(), false},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestLowOrder(t *testing.T) {
	id := NewIdentity(testKey("low order"))
	for _, s := range lowOrderHex {
		canonical := PublicKey(mustHexKey(t, s))
		topBit := canonical
		topBit[31] |= 0x80
		for _, pub := range []PublicKey{canonical, topBit} {
			if !pub.IsLowOrder() {
				t.Errorf("IsLowOrder(%x): got false, want true", pub[:])
			}
			if _, err := id.NewHandshake(pub, PresharedKey{}); !errors.Is(err, ErrLowOrderKey) {
				t.Errorf("NewHandshake(%x): got %v, want ErrLowOrderKey", pub[:], err)
			}
		}
	}
	for _, s := range notLowOrderWhenMasked {
		if pub := PublicKey(mustHexKey(t, s)); pub.IsLowOrder() {
			t.Errorf("IsLowOrder(%s): got true, want false (the top bit is masked)", s)
		}
	}
	for i := range 32 {
		pub := testKey(fmt.Sprint("ordinary", i)).PublicKey()
		if pub.IsLowOrder() {
			t.Errorf("IsLowOrder(%v): got true, want false", pub)
		}
	}
}

// IsLowOrder's table agrees with the definition: X25519 with a clamped
// scalar gives zero. Checked on the table itself with and without the top
// bit, on near misses, and on random keys.
func TestIsLowOrderMatchesX25519(t *testing.T) {
	probe := PrivateKey{0: 8, 31: 64}
	reference := func(k PublicKey) bool {
		_, err := probe.sharedSecret(k)
		return err != nil
	}
	var keys []PublicKey
	for _, p := range lowOrderPoints {
		for _, top := range []byte{0, 0x80} {
			k := PublicKey(p)
			k[31] |= top
			keys = append(keys, k)
			k[5] ^= 1 // a near miss
			keys = append(keys, k)
		}
	}
	for i := 0; i < 1000; i++ {
		keys = append(keys, testKey(fmt.Sprint(i)).PublicKey())
	}
	for _, k := range keys {
		if got, want := k.IsLowOrder(), reference(k); got != want {
			t.Errorf("%x: got IsLowOrder %v, X25519 says %v", k, got, want)
		}
	}
}
