package meshsource

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/etcdtest"
)

// bigMesh is a valid mesh file of n nodes; extra is node n's last key,
// to make two versions differ.
func bigMesh(b *testing.B, n int, extra string) []byte {
	var sb strings.Builder
	sb.WriteString("[mesh]\nname = \"big\"\npool = \"10.200.0.0/16\"\n")
	for i := range n {
		k, err := crypto.GeneratePrivateKey()
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&sb, "\n[[node]]\nname = \"n%d\"\npublic_key = %q\naddress = \"10.100.%d.%d/8\"\nendpoint = \"198.18.%d.%d:51820\"\n",
			i, k.PublicKey().String(), i/250, i%250+1, i/250, i%250+1)
		if i == n-1 {
			sb.WriteString(extra)
		}
	}
	return []byte(sb.String())
}

// BenchmarkPushApply10k measures one push of a 10,000-node mesh until a
// watching source has delivered it and it is parsed and validated: what
// a node does before its engine reload.
func BenchmarkPushApply10k(b *testing.B) {
	srv := etcdtest.Start(b)
	cli, err := Dial(EtcdConfig{Endpoints: []string{srv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	meshes := [2][]byte{bigMesh(b, 10000, ""), bigMesh(b, 10000, "keepalive = \"25s\"\n")}
	if _, err := Push(b.Context(), cli, "/b", meshes[1]); err != nil {
		b.Fatal(err)
	}
	src := NewEtcd(cli, "/b", crypto.PublicKey{}, quiet)
	first, err := src.Read(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	src.Watch(first)
	defer src.Close()
	b.SetBytes(int64(len(meshes[0])))
	b.ResetTimer()
	for i := range b.N {
		if _, err := Push(b.Context(), cli, "/b", meshes[i%2]); err != nil {
			b.Fatal(err)
		}
		select {
		case s := <-src.Updates():
			if _, err := parseMesh(s); err != nil {
				b.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			b.Fatal("no update within 10s")
		}
	}
}

// BenchmarkJoinWith1000 measures, with 1,000 nodes registered, one more
// node's join and publish until a watching source has delivered a mesh
// with it, parsed and validated.
func BenchmarkJoinWith1000(b *testing.B) {
	srv := etcdtest.Start(b)
	cli, err := Dial(EtcdConfig{Endpoints: []string{srv.URL}})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	if _, err := Push(b.Context(), cli, "/b", bigMesh(b, 1, "")); err != nil {
		b.Fatal(err)
	}
	key := func() string {
		k, _ := crypto.GeneratePrivateKey()
		return k.PublicKey().String()
	}
	for i := range 1000 {
		m, err := Join(b.Context(), cli, "/b", Member{Name: fmt.Sprintf("m%d", i), PublicKey: key()}, time.Minute, quiet)
		if err != nil {
			b.Fatal(err)
		}
		defer m.Leave(b.Context())
		if err := m.Publish(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	src := NewEtcd(cli, "/b", crypto.PublicKey{}, quiet)
	first, err := src.Read(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	src.Watch(first)
	defer src.Close()
	b.ResetTimer()
	for i := range b.N {
		m, err := Join(b.Context(), cli, "/b", Member{Name: fmt.Sprintf("new%d", i), PublicKey: key()}, time.Minute, quiet)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Publish(b.Context()); err != nil {
			b.Fatal(err)
		}
		for found := false; !found; {
			select {
			case s := <-src.Updates():
				mesh, err := parseMesh(s)
				if err != nil {
					b.Fatal(err)
				}
				found = len(mesh.Nodes) == 1002
			case <-time.After(10 * time.Second):
				b.Fatal("no update within 10s")
			}
		}
		b.StopTimer()
		m.Leave(b.Context())
		<-src.Updates()
		b.StartTimer()
	}
}
