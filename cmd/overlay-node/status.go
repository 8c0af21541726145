package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
)

const statusSynopsis = "status [--interface NAME] [--json]"

// statusTimeout bounds the wait for a daemon that accepts but does not answer.
const statusTimeout = 5 * time.Second

// cmdStatus prints the state of the node running on an interface, read
// from its control socket: it needs no mesh file.
func cmdStatus(args []string, stdout io.Writer) error {
	c := newCommand("status", statusSynopsis, stdout)
	iface := c.String("interface", "ovl0", "interface of the running node")
	asJSON := c.Bool("json", false, "print the status as JSON (schema in docs/metrics.md)")
	if err := c.parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	raw, st, err := control.FetchStatus(ctx, control.SocketPath(*iface))
	switch {
	case errors.Is(err, control.ErrNotRunning):
		return fmt.Errorf("status: interface %s: %w (hint: start the node with 'overlay-node up', or pass --interface NAME)", *iface, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("status: interface %s: %w (hint: run as root, like the daemon)", *iface, err)
	case err != nil:
		return fmt.Errorf("status: interface %s: %w", *iface, err)
	}
	if *asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	return writeStatus(stdout, st)
}

// writeStatus prints st for a terminal: a line about the node, a table of
// peers, and the node's nonzero drop counters. It fits 80 columns for
// node names up to 12 characters and IPv4 endpoints.
func writeStatus(w io.Writer, st *control.Status) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mesh %s, node %s, interface %s, port %d\n", st.Mesh, st.Node, st.Interface, st.ListenPort)
	fmt.Fprintf(&b, "public key: %s\n", st.PublicKey)
	if st.MeshSource == "etcd" {
		fmt.Fprintf(&b, "mesh from etcd: revision %d, applied %s, watch reconnects %d\n",
			st.MeshRevision, st.ConfigLoaded.UTC().Format(time.RFC3339), st.MeshWatchReconnects)
	}
	if d := st.DNS; d != nil {
		addrs := make([]string, len(d.Addresses))
		for i, ap := range d.Addresses {
			addrs[i] = ap.String()
		}
		fmt.Fprintf(&b, "dns: %s, %d service(s), on %s\n", d.Domain, d.Services, strings.Join(addrs, " "))
	}
	b.WriteByte('\n')

	if len(st.Peers) == 0 {
		b.WriteString("no peers\n")
	} else {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tENDPOINT\tHANDSHAKE\tRX\tTX\tDROPS")
		for _, p := range st.Peers {
			ep := "(none)"
			if p.Endpoint.IsValid() {
				ep = p.Endpoint.String()
			}
			var drops uint64
			for _, n := range p.Drops {
				drops += n
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n",
				p.Name, ep, handshakeAge(p.LatestHandshakeAge), humanBytes(p.RxBytes), humanBytes(p.TxBytes), drops)
		}
		tw.Flush()
	}

	b.WriteByte('\n')
	reasons := make([]string, 0, len(st.Drops))
	for r, n := range st.Drops {
		if n > 0 {
			reasons = append(reasons, r)
		}
	}
	if len(reasons) == 0 {
		b.WriteString("drops: none\n")
	} else {
		// Most frequent first: that is the one to look into.
		slices.SortFunc(reasons, func(x, y string) int {
			if st.Drops[x] != st.Drops[y] {
				if st.Drops[x] > st.Drops[y] {
					return -1
				}
				return 1
			}
			return strings.Compare(x, y)
		})
		// Names to the left, counts to the right.
		nameW, countW := len("DROP REASON"), len("COUNT")
		for _, r := range reasons {
			nameW = max(nameW, len(r))
			countW = max(countW, len(strconv.FormatUint(st.Drops[r], 10)))
		}
		fmt.Fprintf(&b, "%-*s  %*s\n", nameW, "DROP REASON", countW, "COUNT")
		for _, r := range reasons {
			fmt.Fprintf(&b, "%-*s  %*d\n", nameW, r, countW, st.Drops[r])
		}
	}
	writeFirewall(&b, &st.Firewall)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeFirewall prints the rules in force with the flows each admitted,
// and the connection table's size; nothing without rules.
func writeFirewall(b *strings.Builder, f *control.Firewall) {
	if !f.Enabled {
		return
	}
	b.WriteByte('\n')
	fmt.Fprintf(b, "firewall: %d rule(s), deny %s, policy %.12s; denied %d in, %d out\n",
		len(f.Rules), f.Deny, f.PolicyHash, f.DeniedIn, f.DeniedOut)
	fmt.Fprintf(b, "conntrack: %d flows, %d evicted, %d cut by reloads\n\n", f.ConntrackEntries, f.ConntrackEvictions, f.ConntrackCut)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tWHERE\tFLOWS")
	for _, r := range f.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%d\n", r.Name, r.Pos, r.Flows)
	}
	tw.Flush()
}

// handshakeAge says how long ago a handshake was, in at most two units:
// "12s ago", "3m 4s ago", "2h 5m ago", "3d 4h ago", or "never".
func handshakeAge(secs *int64) string {
	if secs == nil {
		return "never"
	}
	s := max(*secs, 0)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds ago", s)
	case s < 3600:
		return fmt.Sprintf("%dm %ds ago", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %dm ago", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd %dh ago", s/86400, s%86400/3600)
}

// humanBytes formats n in IEC units, as wg does: "512 B", "1.5 KiB",
// "12.3 MiB".
func humanBytes(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n) / 1024
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
