package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

var (
	// ErrNoConfig is returned by Load when the mesh file does not exist, as
	// opposed to a file that exists but is invalid (an ErrorList). The error
	// returned also matches fs.ErrNotExist.
	ErrNoConfig = errors.New("no mesh file")

	// ErrNotInMesh is returned by Mesh.Self when no node has the given
	// public key.
	ErrNotInMesh = errors.New("public key is not in the mesh")
)

// Error is one problem in a mesh file.
//
// Line and Col are 1-based and point at the offending key or value; they are
// zero for a Mesh that was built in code rather than parsed.
type Error struct {
	File string // path of the mesh file, as given to Parse or Load
	Line int
	Col  int
	Key  string // dotted TOML key, such as "node.address"; empty for syntax errors
	Msg  string // what is wrong
	Hint string // how to fix it; may be empty

	Warning bool // a suspect value that does not make the mesh invalid; see Mesh.Warnings
}

// Error formats e as "file:line:col: key: message (hint: ...)", with
// "warning: " before the key for a warning.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.File == "" {
		b.WriteString("mesh")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Col)
	}
	b.WriteString(": ")
	if e.Warning {
		b.WriteString("warning: ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// ErrorList is every problem found in a mesh file, ordered by position.
// Parse, Load and Mesh.Validate return it (as an error) when there is at
// least one problem; use errors.As to get at the individual errors.
type ErrorList []*Error

// Error formats the list one error per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the list, so that errors.As finds an *Error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sort orders the list by position. Errors without a position keep their
// relative order and come first.
func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
}

// err returns l as an error, or nil when l is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	return l
}

// noConfigError reports a mesh file that does not exist.
type noConfigError struct {
	path string
	err  error // from the file system; matches fs.ErrNotExist
}

func (e *noConfigError) Error() string {
	return fmt.Sprintf("no mesh file: %s does not exist (hint: pass the mesh file shared by all nodes with -c)", e.path)
}

func (e *noConfigError) Unwrap() []error { return []error{ErrNoConfig, e.err} }
