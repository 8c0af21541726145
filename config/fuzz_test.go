package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; every
// error must be an ErrorList whose errors point inside the file; and every
// mesh it accepts must survive marshal and Parse unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte(head + nodeA + nodeB))
	f.Add([]byte("node = [{name = \"a\", public_key = \"" + keyA + "\", address = [\"10.100.0.1/24\", \"fd00::1/64\"]}]\n" + head))
	f.Add([]byte("[mesh]\nname = \"t\"\nmesh.x.y = [[1], {a = 2}]\n[[node]]\n[[node.x]]\n"))
	f.Add([]byte("a.b.c = 1\n[a]\n[[x]]\n[x.y]\n"))
	f.Add([]byte(""))
	f.Add([]byte(dnsHead + "dns_upstream = [\"192.0.2.53:53\"]\n" + nodeA + svc("name = \"db\"\nnodes = [\"a\"]\nport = 5432\nprotocol = \"tcp\"\n")))
	if files, _ := filepath.Glob("../examples/*/mesh.toml"); len(files) > 0 {
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.toml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("got error %v (%T), want a non-empty ErrorList", err, err)
			}
			lines := strings.Count(string(data), "\n") + 1
			for _, e := range list {
				if e.File != "fuzz.toml" || e.Line < 1 || e.Line > lines || e.Col < 1 || e.Msg == "" {
					t.Fatalf("error without a valid position (file has %d lines): %#v", lines, e)
				}
				if want := fmt.Sprintf("fuzz.toml:%d:%d: ", e.Line, e.Col); !strings.HasPrefix(e.Error(), want) {
					t.Fatalf("got %q, want prefix %q", e.Error(), want)
				}
			}
			return
		}
		out, err := marshal(m)
		if err != nil {
			t.Fatalf("marshal of a valid mesh: %v", err)
		}
		m2, err := Parse("fuzz.toml", out)
		if err != nil {
			t.Fatalf("Parse of marshal output: %v\n%s", err, out)
		}
		if got, want := strip(m2), strip(m); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the mesh:\ngot  %+v\nwant %+v", got, want)
		}
	})
}
