package main

import (
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/overlay-node/overlay-node/config"
)

const exportSynopsis = "export wg-quick -c MESH NODE"

// privateKeyPlaceholder stands in the exported file for the node's private
// key, which the mesh file does not hold.
const privateKeyPlaceholder = "REPLACE_WITH_THE_NODE_PRIVATE_KEY"

// cmdExport writes a node's configuration for another tool; wg-quick is
// the only one.
func cmdExport(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "wg-quick" {
		what := "missing format"
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			what = fmt.Sprintf("unknown format %q", args[0])
		} else if len(args) > 0 {
			what = "the format comes first"
		}
		return &usageError{msg: fmt.Sprintf("export: %s: want wg-quick\nusage: overlay-node %s", what, exportSynopsis)}
	}
	c := newCommand("export wg-quick", exportSynopsis+
		"\n\nPrints the wg-quick file for NODE, a stock WireGuard peer of the mesh, with its private key left as a placeholder.", stdout)
	meshPath := c.String("c", "", "mesh file (required)")
	if err := c.Parse(args[1:]); err != nil {
		return c.parse(args[1:])
	}
	usage := func(format string, a ...any) error {
		return &usageError{msg: fmt.Sprintf("export wg-quick: "+format+"\nusage: overlay-node %s", append(a, exportSynopsis)...)}
	}
	if *meshPath == "" {
		return usage("-c is required")
	}
	if c.NArg() != 1 {
		return usage("want one NODE, got %d argument(s)", c.NArg())
	}
	mesh, err := loadMesh(*meshPath, stderr)
	if err != nil {
		return err
	}
	for i := range mesh.Nodes {
		if mesh.Nodes[i].Name == c.Arg(0) {
			_, err := io.WriteString(stdout, wgQuickFile(mesh, &mesh.Nodes[i]))
			return err
		}
	}
	return usage("mesh %s has no node %q", mesh.Name, c.Arg(0))
}

// wgQuickFile is the wg-quick configuration of self: its address, port
// and MTU, and every other node as a [Peer] with the allowed IPs the
// overlay-nodes give it. It holds only keys wg-quick applies with ip and
// wg alone: no DNS (that needs resolvconf) and no default route (that
// needs nft or iptables).
func wgQuickFile(mesh *config.Mesh, self *config.Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# wg-quick file for node %s of mesh %s, written by overlay-node export from %s.\n", self.Name, mesh.Name, filepath.Base(mesh.Path))
	fmt.Fprintf(&b, "# Replace the PrivateKey placeholder with the private key whose public key is %s.\n", self.PublicKey)
	if len(mesh.Allow) > 0 {
		b.WriteString("# The mesh has [[allow]] rules: the overlay-nodes enforce them on their side; this peer enforces nothing.\n")
	}
	b.WriteString("\n[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", privateKeyPlaceholder)
	fmt.Fprintf(&b, "Address = %s\n", prefixes(self.Addresses))
	fmt.Fprintf(&b, "ListenPort = %d\n", self.Port)
	fmt.Fprintf(&b, "MTU = %d\n", mesh.MTU)
	for i := range mesh.Nodes {
		nd := &mesh.Nodes[i]
		if nd.Name == self.Name {
			continue
		}
		fmt.Fprintf(&b, "\n[Peer]\n# %s\n", nd.Name)
		fmt.Fprintf(&b, "PublicKey = %s\n", nd.PublicKey)
		fmt.Fprintf(&b, "AllowedIPs = %s\n", prefixes(nd.AllowedIPs()))
		if nd.Endpoint != "" {
			fmt.Fprintf(&b, "Endpoint = %s\n", nd.Endpoint)
		}
		if self.Keepalive > 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", int(self.Keepalive.Seconds()))
		}
	}
	return b.String()
}

// prefixes joins ps as wg-quick lists them: comma and space.
func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
