// Package doctor diagnoses a running node from the bottom up: the daemon,
// the interface, the kernel's routes, forwarding and firewall, the UDP
// port, then each peer's endpoint, handshake, segmentation verdict and a
// ping through the tunnel. Every check says ok, warn or fail, what it saw,
// and for a warn or fail what would fix it.
//
// The daemon's view comes from its control socket, the kernel's from
// netlink, /proc and the firewall tools, and the peers' from probes: an
// ICMP echo through the tunnel, and, for a peer that does not answer, a
// UDP datagram and an ICMP echo to its endpoint, which tell a peer that is
// down or unreachable from one that silently drops this node's handshakes
// (a key mismatch).
package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// Level is the outcome of a check.
type Level string

// The levels, from best to worst.
const (
	OK   Level = "ok"
	Warn Level = "warn"
	Fail Level = "fail"
)

// Check is one line of the report.
type Check struct {
	Name  string `json:"check"` // what was checked: "interface", "peer b: handshake"
	Level Level  `json:"level"`
	Saw   string `json:"saw"`           // what the check saw
	Fix   string `json:"fix,omitempty"` // for warn and fail: what would fix it
}

// Report is every check of one run, bottom up.
type Report struct {
	Interface string  `json:"interface"`
	Node      string  `json:"node,omitempty"` // "" when the daemon did not answer
	Checks    []Check `json:"checks"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Level == Fail {
			return true
		}
	}
	return false
}

// Find returns the check called name, or nil.
func (r *Report) Find(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

func (r *Report) add(name string, l Level, saw, fix string) {
	r.Checks = append(r.Checks, Check{Name: name, Level: l, Saw: saw, Fix: fix})
}

func (r *Report) ok(name, saw string) { r.add(name, OK, saw, "") }

// WriteText prints the report for a terminal: one line per check, and an
// indented fix under each warn and fail.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Level, c.Name, c.Saw)
		if c.Fix != "" {
			fmt.Fprintf(tw, "\t\tfix: %s\n", c.Fix)
		}
	}
	tw.Flush()
	n := map[Level]int{}
	for _, c := range r.Checks {
		n[c.Level]++
	}
	fmt.Fprintf(&b, "\n%d ok, %d warn, %d fail\n", n[OK], n[Warn], n[Fail])
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// prefixList prints prefixes the way ip does, comma-separated; "none" for
// none.
func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
