package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// errHelp is returned when -h was asked for and help was printed.
var errHelp = errors.New("help requested")

// command is a subcommand's flag set and its one-line synopsis.
type command struct {
	*flag.FlagSet
	synopsis string
	help     io.Writer // where -h prints
}

// newCommand returns a flag set that reports errors instead of exiting, so
// run can print one usage line and exit 2.
func newCommand(name, synopsis string, help io.Writer) *command {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{FlagSet: fs, synopsis: synopsis, help: help}
}

// parse parses args and rejects stray positional arguments.
func (c *command) parse(args []string) error {
	if err := c.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printHelp()
			return errHelp
		}
		return &usageError{msg: fmt.Sprintf("%s: %v\nusage: overlay-node %s", c.Name(), err, c.synopsis)}
	}
	if c.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("%s: unexpected argument %q\nusage: overlay-node %s",
			c.Name(), strings.Join(c.Args(), " "), c.synopsis)}
	}
	return nil
}

// printHelp prints the usage line and every flag with its default, also
// the empty and false ones that flag.PrintDefaults leaves out.
func (c *command) printHelp() {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: overlay-node %s\n", c.synopsis)
	n := 0
	c.VisitAll(func(f *flag.Flag) {
		if n == 0 {
			b.WriteString("\nflags:\n")
		}
		n++
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		arg, usage := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + arg
		}
		def := f.DefValue
		switch {
		case strings.Contains(usage, "(default") || strings.Contains(usage, "(required)"):
			def = "" // the usage says it in its own words
		case def == "":
			def = " (default: none)"
		default:
			def = fmt.Sprintf(" (default: %s)", def)
		}
		fmt.Fprintf(&b, "  %s%s%s\n    \t%s%s\n", dash, f.Name, arg, usage, def)
	})
	io.WriteString(c.help, b.String())
}
