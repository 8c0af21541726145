package config

import (
	"crypto/ecdh"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// bigMesh returns a mesh file of n container hosts, each with an address
// and a subnet, as a large flannel-style cluster would have.
func bigMesh(tb testing.TB, n int) []byte {
	tb.Helper()
	rng := rand.NewChaCha8([32]byte{})
	var b strings.Builder
	b.WriteString("[mesh]\nname = \"big\"\n")
	for i := range n {
		k, err := ecdh.X25519().GenerateKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "\n[[node]]\nname = \"host-%d\"\npublic_key = %q\naddress = \"10.%d.%d.1/8\"\nendpoint = \"192.0.2.1:%d\"\nsubnets = [\"172.%d.%d.0/24\"]\n",
			i, base64.StdEncoding.EncodeToString(k.PublicKey().Bytes()), 100+i>>8&0xff, i&0xff, 1+i, 16+i>>8, i&0xff)
	}
	return []byte(b.String())
}

func TestBigMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	data := bigMesh(t, 2000)
	m, err := Parse("big.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 2000 {
		t.Fatalf("got %d nodes, want 2000", len(m.Nodes))
	}
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{3, 100, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			data := bigMesh(b, n)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse("big.toml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
