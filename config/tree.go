package config

import (
	"sort"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The decoder works in two passes. go-toml's own decoder first checks that
// the document is valid TOML (syntax, duplicate keys, redefined tables) and
// reports the first violation with its position. The document is then parsed
// again with go-toml's AST parser into the tree below, which remembers where
// every key and value was written, so that schema and validation errors can
// point at them. Both passes use the same parser, so the second one only
// builds what the first one accepted.

// position is a 1-based line and column (in bytes) in the mesh file.
type position struct {
	Line, Col int
}

// kind is the type of a TOML value, as far as the schema cares.
type kind uint8

const (
	kindString kind = iota + 1
	kindInteger
	kindFloat
	kindBool
	kindDateTime
	kindArray
	kindTable
)

// describe names the kind for error messages: "must be a string, not an integer".
func (k kind) describe() string {
	switch k {
	case kindString:
		return "a string"
	case kindInteger:
		return "an integer"
	case kindFloat:
		return "a float"
	case kindBool:
		return "a boolean"
	case kindDateTime:
		return "a date or time"
	case kindArray:
		return "an array"
	case kindTable:
		return "a table"
	}
	return "a value"
}

// value is one TOML value with the positions it was written at.
type value struct {
	kind kind
	key  position // the key naming the value; for array elements, the element
	at   position // the value; for tables with a header, the header's '['
	text string   // scalars: the string's contents, or the literal of a number, boolean or date

	elems         []*value // kindArray
	arrayOfTables bool     // kindArray built from [[header]] tables
	table         *table   // kindTable
}

// table is a TOML table whose keys keep the order they were written in.
type table struct {
	keys []string
	vals map[string]*value
}

func newTable() *table { return &table{vals: make(map[string]*value)} }

func (t *table) set(key string, v *value) {
	if _, ok := t.vals[key]; !ok {
		t.keys = append(t.keys, key)
	}
	t.vals[key] = v
}

// treeBuilder turns the parser's expressions into a tree of tables.
type treeBuilder struct {
	p     unstable.Parser
	data  []byte
	lines []int // offset of the first byte of every line
}

// parseTree parses data, which go-toml has already accepted, into a tree.
// The returned root is a table value at 1:1.
func parseTree(data []byte) (*value, error) {
	b := &treeBuilder{data: data, lines: []int{0}}
	for i, c := range data {
		if c == '\n' {
			b.lines = append(b.lines, i+1)
		}
	}
	root := &value{kind: kindTable, key: position{1, 1}, at: position{1, 1}, table: newTable()}
	cur := root.table
	b.p.Reset(data)
	for b.p.NextExpression() {
		e := b.p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			b.keyValue(cur, e)
		case unstable.Table:
			cur = b.tableHeader(root.table, e)
		case unstable.ArrayTable:
			cur = b.arrayTableHeader(root.table, e)
		}
	}
	return root, b.p.Error()
}

// pos converts a byte offset into a position.
func (b *treeBuilder) pos(offset uint32) position {
	off := int(offset)
	i := sort.Search(len(b.lines), func(i int) bool { return b.lines[i] > off }) - 1
	if i < 0 {
		i = 0
	}
	return position{Line: i + 1, Col: off - b.lines[i] + 1}
}

// keyParts returns the parts of a (possibly dotted) key.
func keyParts(n *unstable.Node) []*unstable.Node {
	var parts []*unstable.Node
	for it := n.Key(); it.Next(); {
		parts = append(parts, it.Node())
	}
	return parts
}

// headerPos returns the position of the '[' that opens the header whose
// first key part is k.
func (b *treeBuilder) headerPos(k *unstable.Node) position {
	off := k.Raw.Offset
	for off > 0 {
		c := b.data[off-1]
		if c != '[' && c != ' ' && c != '\t' {
			break
		}
		off--
	}
	return b.pos(off)
}

// descend returns the table named by key part k inside t, creating it when
// needed, as dotted keys and table headers do. A key naming an array of
// tables descends into its last element.
func (b *treeBuilder) descend(t *table, k *unstable.Node) *table {
	name := string(k.Data)
	v, ok := t.vals[name]
	if !ok {
		at := b.pos(k.Raw.Offset)
		v = &value{kind: kindTable, key: at, at: at, table: newTable()}
		t.set(name, v)
	}
	switch {
	case v.kind == kindTable:
		return v.table
	case v.kind == kindArray && len(v.elems) > 0 && v.elems[len(v.elems)-1].kind == kindTable:
		return v.elems[len(v.elems)-1].table
	}
	// go-toml rejects a key that is both a value and a table before the
	// tree is built; should one slip through, its keys go nowhere.
	return newTable()
}

func (b *treeBuilder) tableHeader(root *table, e *unstable.Node) *table {
	parts := keyParts(e)
	if len(parts) == 0 {
		return newTable()
	}
	t := root
	for _, k := range parts[:len(parts)-1] {
		t = b.descend(t, k)
	}
	last := parts[len(parts)-1]
	name := string(last.Data)
	if v, ok := t.vals[name]; ok {
		if v.kind != kindTable {
			return newTable()
		}
		// The table existed implicitly (from a dotted key or a deeper
		// header); this header is where it is defined.
		v.at = b.headerPos(parts[0])
		return v.table
	}
	v := &value{kind: kindTable, key: b.pos(last.Raw.Offset), at: b.headerPos(parts[0]), table: newTable()}
	t.set(name, v)
	return v.table
}

func (b *treeBuilder) arrayTableHeader(root *table, e *unstable.Node) *table {
	parts := keyParts(e)
	if len(parts) == 0 {
		return newTable()
	}
	t := root
	for _, k := range parts[:len(parts)-1] {
		t = b.descend(t, k)
	}
	last := parts[len(parts)-1]
	name := string(last.Data)
	at := b.headerPos(parts[0])
	v, ok := t.vals[name]
	if !ok {
		v = &value{kind: kindArray, key: b.pos(last.Raw.Offset), at: at, arrayOfTables: true}
		t.set(name, v)
	}
	if v.kind != kindArray || !v.arrayOfTables {
		return newTable()
	}
	elem := &value{kind: kindTable, key: at, at: at, table: newTable()}
	v.elems = append(v.elems, elem)
	return elem.table
}

func (b *treeBuilder) keyValue(t *table, e *unstable.Node) {
	parts := keyParts(e)
	if len(parts) == 0 {
		return
	}
	for _, k := range parts[:len(parts)-1] {
		t = b.descend(t, k)
	}
	last := parts[len(parts)-1]
	v := b.value(e.Value(), b.valuePos(e.Value(), last))
	v.key = b.pos(last.Raw.Offset)
	t.set(string(last.Data), v)
}

// valuePos returns where the value of a key/value pair starts. Arrays carry
// no range of their own, so their position is found after the '='.
func (b *treeBuilder) valuePos(v, lastKey *unstable.Node) position {
	if v.Kind != unstable.Array {
		return b.pos(v.Raw.Offset)
	}
	off := int(lastKey.Raw.Offset + lastKey.Raw.Length)
	for off < len(b.data) {
		c := b.data[off]
		if c != ' ' && c != '\t' && c != '=' {
			break
		}
		off++
	}
	return b.pos(uint32(off)) //nolint:gosec // offsets come from the parser's uint32 ranges
}

// value converts an AST value. at is its position, known by the caller.
func (b *treeBuilder) value(n *unstable.Node, at position) *value {
	v := &value{key: at, at: at}
	switch n.Kind {
	case unstable.String:
		v.kind = kindString
	case unstable.Integer:
		v.kind = kindInteger
	case unstable.Float:
		v.kind = kindFloat
	case unstable.Bool:
		v.kind = kindBool
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		v.kind = kindDateTime
	case unstable.Array:
		v.kind = kindArray
		for it := n.Children(); it.Next(); {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			// Nested arrays have no range; they borrow their parent's.
			cat := at
			if c.Kind != unstable.Array {
				cat = b.pos(c.Raw.Offset)
			}
			v.elems = append(v.elems, b.value(c, cat))
		}
		return v
	case unstable.InlineTable:
		v.kind = kindTable
		v.table = newTable()
		for it := n.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				b.keyValue(v.table, c)
			}
		}
		return v
	}
	v.text = string(n.Data)
	return v
}
