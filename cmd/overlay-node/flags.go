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
			fmt.Fprintf(c.help, "usage: overlay-node %s\n\nflags:\n", c.synopsis)
			c.SetOutput(c.help)
			c.PrintDefaults()
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
