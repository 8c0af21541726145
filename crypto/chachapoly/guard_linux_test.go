//go:build linux

package chachapoly

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/unix"
)

// guardMaxLen is the longest message the guard test seals: two pages.
const guardMaxLen = 8192

// guarded returns a read-write region of dataPages pages with an
// inaccessible (PROT_NONE) page on either side, so that touching one byte
// before or after it faults. The slice's capacity ends at the back guard.
func guarded(t *testing.T, dataPages int) []byte {
	t.Helper()
	ps := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, (dataPages+2)*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(mem) })
	for _, g := range [][]byte{mem[:ps], mem[len(mem)-ps:]} {
		if err := unix.Mprotect(g, unix.PROT_NONE); err != nil {
			t.Fatal(err)
		}
	}
	return mem[ps : len(mem)-ps : len(mem)-ps]
}

// place returns n bytes of region whose first byte follows the front guard
// (atEnd false) or whose last byte precedes the back guard (atEnd true).
// The capacity is n either way, so an append cannot reach past it.
func place(region []byte, n int, atEnd bool) []byte {
	if atEnd {
		return region[len(region)-n:]
	}
	return region[:n:n]
}

// Seal and Open must touch no byte outside the buffers they are given: every
// length from 0 to two pages runs with each buffer flush against a guard
// page, at the front and at the back, in place and not. A read or write of
// one byte out of bounds faults.
func TestGuardPages(t *testing.T) {
	// Report a fault as the case that caused it rather than crash.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	t.Logf("AVX-512 kernels: %t", useAVX512)

	pages := (guardMaxLen+TagSize)/os.Getpagesize() + 1
	in, out := guarded(t, pages), guarded(t, pages)
	var key [32]byte
	for i := range key {
		key[i] = byte(i * 7)
	}
	k := New(&key)
	ref, err := chacha20poly1305.New(key[:])
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, guardMaxLen)
	for i := range msg {
		msg[i] = byte(i*31 + 5)
	}

	for n := 0; n <= guardMaxLen; n++ {
		counter := uint64(n)
		want := ref.Seal(nil, nonce(counter), msg[:n], nil)
		for _, atEnd := range []bool{false, true} {
			for _, inPlace := range []bool{false, true} {
				name := fmt.Sprintf("len %d, at end %t, in place %t", n, atEnd, inPlace)
				if err := guardCase(k, counter, msg[:n], want, in, out, atEnd, inPlace); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
		}
	}
}

// guardCase seals pt and opens want once with buffers placed in the guarded
// regions in and out, and checks both results.
func guardCase(k *Key, counter uint64, pt, want, in, out []byte, atEnd, inPlace bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fault: %v", r)
		}
	}()
	n := len(pt)

	// Seal.
	var sealed []byte
	if inPlace {
		buf := place(in, n+TagSize, atEnd)
		copy(buf, pt)
		sealed = k.Seal(buf[:0], counter, buf[:n])
	} else {
		src := place(in, n, atEnd)
		copy(src, pt)
		sealed = k.Seal(place(out, n+TagSize, atEnd)[:0], counter, src)
	}
	if !bytes.Equal(sealed, want) {
		return fmt.Errorf("Seal: got %x, want %x", sealed, want)
	}

	// Open.
	var opened []byte
	ct := place(in, n+TagSize, atEnd)
	copy(ct, want)
	if inPlace {
		opened, err = k.Open(ct[:0], counter, ct)
	} else {
		opened, err = k.Open(place(out, n, atEnd)[:0], counter, ct)
	}
	if err != nil {
		return fmt.Errorf("Open: %v", err)
	}
	if !bytes.Equal(opened, pt) {
		return fmt.Errorf("Open: got %x, want %x", opened, pt)
	}
	return nil
}
