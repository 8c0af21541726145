package main

import (
	"context"
	"fmt"
	"io"

	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/doctor"
)

const doctorSynopsis = "doctor [--interface NAME] [--json] [--wait DURATION] [NODE]"

// cmdDoctor checks the running node from the bottom up and says what to
// fix. It exits 1 when any check fails.
func cmdDoctor(args []string, stdout io.Writer) error {
	c := newCommand("doctor", doctorSynopsis+"\n\nWith NODE, only that peer is checked; without, every peer.", stdout)
	iface := c.String("interface", "ovl0", "interface of the running node")
	asJSON := c.Bool("json", false, "print the report as JSON")
	wait := c.Duration("wait", doctor.DefaultPingWait, "how long a ping through the tunnel waits for a reply")
	if err := c.Parse(args); err != nil {
		return c.parse(args) // the same error, as a usage line, or help
	}
	if c.NArg() > 1 {
		return &usageError{msg: fmt.Sprintf("doctor: want at most one NODE, got %d arguments\nusage: overlay-node %s", c.NArg(), doctorSynopsis)}
	}
	r := doctor.Run(context.Background(), doctor.Options{Interface: *iface, Peer: c.Arg(0), PingWait: *wait})
	var err error
	if *asJSON {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if r.Failed() {
		return errReported
	}
	return nil
}
