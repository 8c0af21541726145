package config

import (
	"errors"
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
