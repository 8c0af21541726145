// Command overlay-node-cni is a CNI plugin (spec 1.0.0 and 1.1.0) that
// attaches containers to the overlay: each container gets a veth on a host
// bridge, an address from the host node's container networks, a default
// route through the bridge and the mesh MTU. The node's other peers route
// those networks to it through the tunnel, so containers on different
// hosts reach each other by their own addresses.
//
// A runtime runs it in the host's network namespace with the network
// config on stdin:
//
//	{"cniVersion": "1.1.0", "name": "overlay", "type": "overlay-node-cni", "interface": "ovl0"}
//
// The node running on interface is the source of truth: the plugin asks it
// through its control socket for the container networks, MTU, overlay
// addresses and DNS domain. Leases are kept under dataDir, one directory
// per network name.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	cniversion "github.com/containernetworking/cni/pkg/version"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node-cni/internal/lease"
)

// version is set at build time (-ldflags -X main.version=...).
var version = "dev"

// Defaults of the network config.
const (
	defaultInterface = "ovl0"
	defaultDataDir   = "/var/lib/cni/overlay-node"
)

// errPluginNotAvailable is the CNI 1.1 error code STATUS returns when the
// plugin cannot serve an ADD.
const errPluginNotAvailable = 50

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus, GC: cmdGC},
		cniversion.PluginSupports("1.0.0", "1.1.0"), "overlay-node-cni "+version)
}

// netConf is the network config.
type netConf struct {
	types.NetConf
	// Interface is the TUN interface of the node whose container
	// networks this host hands out; "ovl0" when empty.
	Interface string `json:"interface"`
	// Bridge is the host bridge the containers' veths join; "cni-" and
	// the interface name when empty.
	Bridge string `json:"bridge"`
	// DataDir keeps the leases; /var/lib/cni/overlay-node when empty.
	DataDir string `json:"dataDir"`
}

// parseConf decodes the network config and fills in its defaults.
func parseConf(stdin []byte) (*netConf, error) {
	c := &netConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "bad network config", err.Error())
	}
	if c.Interface == "" {
		c.Interface = defaultInterface
	}
	if c.Bridge == "" {
		c.Bridge = "cni-" + c.Interface
	}
	if len(c.Bridge) > 15 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("bridge name %q is longer than 15 bytes", c.Bridge),
			`set "bridge" to a name of at most 15 bytes`)
	}
	if c.DataDir == "" {
		c.DataDir = defaultDataDir
	}
	if c.Name == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, "network config has no name", `add "name": "overlay"`)
	}
	return c, nil
}

// leases opens the lease store of the network.
func (c *netConf) leases() (*lease.Store, error) {
	s, err := lease.Open(filepath.Join(c.DataDir, c.Name))
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, "cannot open the lease store", err.Error())
	}
	return s, nil
}

// fetchNode asks the node on the config's interface what it hands to
// containers. A node that does not run, or has no container networks, is
// a CNI error saying so.
func fetchNode(c *netConf) (*control.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := control.FetchNode(ctx, control.SocketPath(c.Interface))
	if errors.Is(err, control.ErrNotRunning) {
		return nil, types.NewError(types.ErrTryAgainLater, fmt.Sprintf("no overlay-node runs on interface %s", c.Interface),
			fmt.Sprintf("start it (overlay-node up --interface %s), or set \"interface\" in the network config to the one it runs on: %v", c.Interface, err))
	}
	if err != nil {
		return nil, types.NewError(types.ErrIOFailure, fmt.Sprintf("cannot ask the node on interface %s", c.Interface), err.Error())
	}
	if len(n.Containers) == 0 {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, fmt.Sprintf("node %q has no container networks", n.Name),
			`add containers = ["172.20.1.0/24"] to its [[node]] in the mesh file, then reload the node`)
	}
	return n, nil
}

// holder is the attachment the arguments name.
func holder(args *skel.CmdArgs) lease.Holder {
	return lease.Holder{ContainerID: args.ContainerID, IfName: args.IfName}
}
