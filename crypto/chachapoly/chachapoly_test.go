package chachapoly

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// keys returns the Key for key on each path this CPU can run: the vector
// kernels where it has them, and x/crypto's AEAD always.
func keys(t testing.TB, key *[32]byte) map[string]*Key {
	fallback := &Key{}
	fallback.aead, _ = chacha20poly1305.New(key[:])
	paths := map[string]*Key{"xcrypto": fallback}
	if useAVX512 {
		paths["avx512"] = New(key)
	}
	return paths
}

func nonce(counter uint64) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.LittleEndian.PutUint64(n[4:], counter)
	return n
}

// TestAgainstXCrypto seals and opens every length up to past two keystream
// runs, in place and not, and compares with x/crypto's AEAD.
func TestAgainstXCrypto(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var key [32]byte
	fill(rng, key[:])
	ref, _ := chacha20poly1305.New(key[:])
	for name, k := range keys(t, &key) {
		t.Run(name, func(t *testing.T) {
			for n := 0; n <= 4200; n += 1 + n/300 {
				counter := rng.Uint64()
				if n%3 == 0 {
					counter = uint64(n) // small counters too
				}
				pt := make([]byte, n)
				fill(rng, pt)
				want := ref.Seal(nil, nonce(counter), pt, nil)

				got := k.Seal([]byte{0xaa}, counter, pt)
				if got[0] != 0xaa || !bytes.Equal(got[1:], want) {
					t.Fatalf("len %d: Seal differs from x/crypto", n)
				}
				buf := make([]byte, n, n+TagSize)
				copy(buf, pt)
				if got := k.Seal(buf[:0], counter, buf); !bytes.Equal(got, want) {
					t.Fatalf("len %d: Seal in place differs from x/crypto", n)
				}

				opened, err := k.Open(nil, counter, want)
				if err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("len %d: Open = %v, plaintext equal %v", n, err, bytes.Equal(opened, pt))
				}
				copy(buf[:n+TagSize], want)
				if opened, err := k.Open(buf[:0], counter, buf[:n+TagSize]); err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("len %d: Open in place = %v", n, err)
				}
			}
		})
	}
}

// TestOpenRejects flips each bit of a sealed message in turn, and tries the
// wrong counter and a short message: every one must fail, and a failed
// Open must not write the plaintext.
func TestOpenRejects(t *testing.T) {
	var key [32]byte
	key[0] = 1
	pt := bytes.Repeat([]byte("overlay"), 40)
	for name, k := range keys(t, &key) {
		t.Run(name, func(t *testing.T) {
			sealed := k.Seal(nil, 9, pt)
			for i := range len(sealed) * 8 {
				bad := bytes.Clone(sealed)
				bad[i/8] ^= 1 << (i % 8)
				if _, err := k.Open(nil, 9, bad); err != ErrOpen {
					t.Fatalf("bit %d flipped: Open = %v, want ErrOpen", i, err)
				}
			}
			if _, err := k.Open(nil, 10, sealed); err != ErrOpen {
				t.Fatalf("wrong counter: Open = %v, want ErrOpen", err)
			}
			if _, err := k.Open(nil, 9, sealed[:TagSize-1]); err != ErrOpen {
				t.Fatalf("short message: Open = %v, want ErrOpen", err)
			}
			if name == "avx512" {
				bad := bytes.Clone(sealed)
				bad[0] ^= 1
				before := bytes.Clone(bad)
				k.Open(bad[:0], 9, bad)
				if !bytes.Equal(bad, before) {
					t.Fatal("failed Open in place wrote to its buffer")
				}
			}
		})
	}
}

func TestOverlapPanics(t *testing.T) {
	var key [32]byte
	for name, k := range keys(t, &key) {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Seal into a shifted copy of its input did not panic")
				}
			}()
			buf := make([]byte, 100, 200)
			k.Seal(buf[1:1], 0, buf[:64])
		})
	}
}

func TestNoAllocs(t *testing.T) {
	var key [32]byte
	buf := make([]byte, 1420, 1420+TagSize)
	for name, k := range keys(t, &key) {
		allocs := testing.AllocsPerRun(100, func() {
			sealed := k.Seal(buf[:0], 7, buf[:1420])
			if _, err := k.Open(sealed[:0], 7, sealed); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Seal and Open, want 0", name, allocs)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, size := range []int{64, 200, 1420} {
		var key [32]byte
		for name, k := range keys(b, &key) {
			b.Run(name+"/"+strconv.Itoa(size), func(b *testing.B) {
				buf := make([]byte, size, size+TagSize)
				b.SetBytes(int64(size))
				for b.Loop() {
					k.Seal(buf[:0], 1, buf)
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, size := range []int{64, 200, 1420} {
		var key [32]byte
		for name, k := range keys(b, &key) {
			b.Run(name+"/"+strconv.Itoa(size), func(b *testing.B) {
				sealed := k.Seal(nil, 1, make([]byte, size))
				buf := make([]byte, len(sealed))
				b.SetBytes(int64(size))
				for b.Loop() {
					copy(buf, sealed)
					if _, err := k.Open(buf[:0], 1, buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
