package config

import (
	"net/netip"
	"strings"
	"testing"
)

func TestPool(t *testing.T) {
	m, err := Parse("m.toml", []byte(head+"pool = \"10.100.1.0/30\"\n"))
	if err != nil {
		t.Fatalf("a mesh with a pool and no nodes: %v", err)
	}
	var got []string
	m.PoolAddresses(func(p netip.Prefix) bool { got = append(got, p.String()); return true })
	if want := "10.100.1.1/30 10.100.1.2/30"; strings.Join(got, " ") != want {
		t.Errorf("pool addresses: got %v, want %s", got, want)
	}

	for _, tc := range []struct{ name, doc, key, msg string }{
		{"not a network", head + "pool = ‸\"10.100.1\"\n", "mesh.pool", "is not a network"},
		{"host bits", head + "pool = ‸\"10.100.1.1/24\"\n", "mesh.pool", "host bits"},
		{"too small", head + "pool = ‸\"10.100.1.0/31\"\n", "mesh.pool", "no room"},
		{"no nodes, no pool", head, "node", "the mesh has no nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, at := unmark(tc.doc)
			_, err := Parse("m.toml", []byte(doc))
			list, ok := err.(ErrorList)
			if !ok || len(list) != 1 {
				t.Fatalf("got %v, want one error", err)
			}
			e := list[0]
			if e.Key != tc.key || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("got %v, want %s: ...%s...", e, tc.key, tc.msg)
			}
			if len(at) > 0 && (e.Line != at[0].Line || e.Col != at[0].Col) {
				t.Errorf("at %d:%d, want %d:%d", e.Line, e.Col, at[0].Line, at[0].Col)
			}
		})
	}
}

// Nodes appended after other tables still decode: the etcd mesh source
// appends the joined nodes to the pushed file.
func TestNodesAfterOtherTables(t *testing.T) {
	doc := head + nodeA + "[[allow]]\nfrom = [\"*\"]\nto = [\"*\"]\n" + nodeB
	m, err := Parse("m.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Nodes) != 2 {
		t.Errorf("got %d nodes, want 2", len(m.Nodes))
	}
}
