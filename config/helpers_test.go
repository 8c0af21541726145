package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// Public keys for tests; their private halves were discarded.
const (
	keyA = "HXoxtKd9I9auLRNgkIT0DxtL2r0U+AIRzYXjvni74nw="
	keyB = "SU+gSG2x7dG12hDJwTxpll6ZjJtIk9u5l2YtlgkWTmM="
	keyC = "cWgdwzpc2iIUZDjzIDFV4B1+h2asIRa71gxDibPHtQc="
	keyD = "ltZpo56qNpEb4nya2+MjPA8WmNR3KQhXMwZnZinYTUQ="
)

// Building blocks of test files. head is lines 1-2; nodeA and nodeB are
// complete, valid nodes of four lines each.
const (
	head  = "[mesh]\nname = \"t\"\n"
	nodeA = "[[node]]\nname = \"a\"\npublic_key = \"" + keyA + "\"\naddress = \"10.100.0.1/24\"\n"
	nodeB = "[[node]]\nname = \"b\"\npublic_key = \"" + keyB + "\"\naddress = \"10.100.0.2/24\"\n"
)

// nodeC returns the start of a third node, without its last key, so that a
// test can add the key under test: name "c", key C, address 10.100.0.3/24.
func nodeC(extra string) string {
	return "[[node]]\nname = \"c\"\npublic_key = \"" + keyC + "\"\naddress = \"10.100.0.3/24\"\n" + extra
}

// marker marks where an error is expected in a test document.
const marker = "‸"

// unmark removes the markers from doc and returns the positions they marked.
func unmark(doc string) (string, []position) {
	var out strings.Builder
	var at []position
	line, col := 1, 1
	for i := 0; i < len(doc); {
		if strings.HasPrefix(doc[i:], marker) {
			at = append(at, position{line, col})
			i += len(marker)
			continue
		}
		c := doc[i]
		out.WriteByte(c)
		i++
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return out.String(), at
}

// errorList unwraps err into its ErrorList, failing the test otherwise.
func errorList(t *testing.T, err error) ErrorList {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got error %v (%T), want an ErrorList", err, err)
	}
	return list
}

// wantOneError parses doc, which has one marker, and checks that it yields
// exactly one error, at the marker, with the given key, a message
// containing msg and a non-empty hint containing hint.
func wantOneError(t *testing.T, doc, key, msg, hint string) {
	t.Helper()
	doc, at := unmark(doc)
	if len(at) != 1 {
		t.Fatalf("test document has %d markers, want 1", len(at))
	}
	m, err := Parse("test.toml", []byte(doc))
	if err == nil {
		t.Fatalf("Parse succeeded (mesh %q), want an error at %d:%d", m.Name, at[0].Line, at[0].Col)
	}
	list := errorList(t, err)
	if len(list) != 1 {
		t.Fatalf("got %d errors, want 1:\n%v", len(list), err)
	}
	e := list[0]
	if e.Line != at[0].Line || e.Col != at[0].Col {
		t.Errorf("got position %d:%d, want %d:%d\n%v", e.Line, e.Col, at[0].Line, at[0].Col, e)
	}
	if e.Key != key {
		t.Errorf("got key %q, want %q", e.Key, key)
	}
	if !strings.Contains(e.Msg, msg) {
		t.Errorf("got message %q, want it to contain %q", e.Msg, msg)
	}
	if !strings.Contains(e.Hint, hint) || e.Hint == "" {
		t.Errorf("got hint %q, want a hint containing %q", e.Hint, hint)
	}
	if want := fmt.Sprintf("test.toml:%d:%d: ", e.Line, e.Col); !strings.HasPrefix(e.Error(), want) {
		t.Errorf("got %q, want it to start with %q", e.Error(), want)
	}
}
