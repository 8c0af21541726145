package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/meshsource"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/sdnotify"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/dnsserver"
	"github.com/overlay-node/overlay-node/tunnel"
)

const upSynopsis = "up (-c mesh.toml [--watch] | --etcd URLS [--prefix P] [--join NAME]) -k node.key [--interface NAME] [--metrics ADDR] [--log-level LEVEL] [--log-format text|json]"

// upFlags are the settings of `up`.
type upFlags struct {
	mesh, key, iface, metrics, logLevel, logFormat string
	source                                         sourceFlags
}

func cmdUp(args []string, stdout, stderr io.Writer) error {
	c := newCommand("up", upSynopsis, stdout)
	var f upFlags
	c.StringVar(&f.mesh, "c", "", "mesh file shared by all nodes (required without --etcd)")
	c.StringVar(&f.key, "k", "", "this node's private key file, mode 0600 (required)")
	c.StringVar(&f.iface, "interface", "ovl0", "TUN interface name")
	c.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on `ADDR`/metrics, e.g. 127.0.0.1:9586 (default off)")
	c.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	c.StringVar(&f.logFormat, "log-format", "text", "text or json")
	f.source.register(c)
	if err := c.parse(args); err != nil {
		return err
	}
	if (f.mesh == "") == (f.source.etcd == "") || f.key == "" {
		return &usageError{msg: "up: -k and one of -c and --etcd are required\nusage: overlay-node " + upSynopsis}
	}
	if err := f.source.check(f.mesh != ""); err != nil {
		return &usageError{msg: "up: " + err.Error() + "\nusage: overlay-node " + upSynopsis}
	}
	log, err := newLogger(stderr, f.logLevel, f.logFormat)
	if err != nil {
		return &usageError{msg: "up: " + err.Error() + "\nusage: overlay-node " + upSynopsis}
	}
	if f.metrics != "" {
		// Bound only once the node is up; a typo should not wait for that.
		if _, _, err := net.SplitHostPort(f.metrics); err != nil {
			return &usageError{msg: fmt.Sprintf("up: bad --metrics %q: want HOST:PORT, e.g. 127.0.0.1:9586\nusage: overlay-node %s", f.metrics, upSynopsis)}
		}
	}
	leaveCoreForKernel()
	stopProfiling, err := startProfiling()
	if err != nil {
		return err
	}
	defer stopProfiling()
	// Catch signals before start-up: a SIGTERM that arrives while the
	// interface is being set up, or just after "node up" is logged, must
	// still tear it down instead of killing the process mid-way. It is
	// queued and acted on once the node is up.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	n, err := startNode(f, log, stderr)
	if err != nil {
		return err
	}
	// The services' start-up garbage can be a large part of a big mesh's
	// footprint: now that nothing refers to it, hand it back before
	// settling down.
	debug.FreeOSMemory()
	ready := func() { notify(log, sdnotify.Ready(fmt.Sprintf("forwarding on %s", f.iface))) }
	ready()
	for running := true; running; {
		select {
		case snap := <-n.src.Updates():
			notify(log, sdnotify.Reloading())
			n.reload(snap)
			ready()
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				log.Info("shutting down", "signal", sig.String())
				running = false
				continue
			}
			notify(log, sdnotify.Reloading())
			n.reread()
			ready()
		}
	}
	notify(log, sdnotify.Stopping())
	return n.stop()
}

// notify logs a failure to tell systemd: the node runs on regardless.
func notify(log *slog.Logger, err error) {
	if err != nil {
		log.Warn("could not notify systemd", "err", err)
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}

// node is a running daemon: its services and what every one of them needs.
type node struct {
	// Immutable.
	log         *slog.Logger
	key         crypto.PrivateKey
	iface       string
	metricsAddr string // "" without --metrics

	// Where the mesh comes from, and, for etcd, the cache of the last mesh
	// applied and the node's membership when it joined.
	src        meshsource.Source
	cachePath  string // "" for a mesh file
	membership *meshsource.Membership
	closeSrc   func() // stops the source and leaves the mesh

	// Set by the engine service's open.
	dev *tunnel.Device
	// Set by the DNS service's open.
	dnsStats *dnsserver.Stats

	// The engine names here the peers whose handshakes go unanswered, for
	// the resolver; a full buffer drops the news, which comes again.
	unanswered chan crypto.PublicKey

	// Replaced by a successful reload: what a reload may not change.
	fixed fixedSettings

	services services
}

// meshState is what the mesh file means for this node: what its services
// start or reload with. The services keep what they need of it, not the
// parsed file itself: on a large mesh that would be most of an idle node's
// memory.
type meshState struct {
	fixed  fixedSettings
	info   control.Node   // what status and metrics say about this node
	engine tunnel.Config  // this node's key and port, its peers
	routes []netip.Prefix // routed through the interface
	peers  int            // how many
	dns    dnsSettings    // the zone this node serves, if the mesh has a domain
	names  []end          // the mesh's nodes, for policy why
	follow followPlan     // the peers' host names to keep resolving
}

// loadState parses a mesh from its source and works out what it means for
// the node with key on iface. It checks everything a bad mesh can break, so
// that a start or reload fails here, before any service is touched.
func loadState(snap meshsource.Snapshot, key crypto.PrivateKey, iface string) (*meshState, error) {
	mesh := snap.Mesh // parsed already by the source, or nil
	if mesh == nil {
		var err error
		if mesh, err = config.Parse(snap.Name, snap.Data); err != nil {
			return nil, err
		}
	}
	loaded := time.Now()
	self, err := mesh.Self(key.PublicKey())
	if err != nil {
		return nil, err
	}
	cfg, err := engineConfig(mesh, self, key)
	if err != nil {
		return nil, err
	}
	dns, err := dnsOf(mesh, self)
	if err != nil {
		return nil, err
	}
	return &meshState{
		fixed:  fixedOf(mesh, self),
		info:   nodeInfo(mesh, self, iface, loaded, snap.Revision),
		engine: cfg,
		routes: kernelRoutes(mesh, self),
		peers:  len(cfg.Peers),
		dns:    dns,
		names:  nodeEnds(mesh),
		follow: followedPeers(mesh, self, &cfg),
	}, nil
}

// startNode brings the node up, one service after the other, and then
// publishes the record of a node that joins. On any error it closes what
// it started and leaves the mesh, so a failed start leaves no interface,
// route, socket or claim in etcd behind.
func startNode(f upFlags, log *slog.Logger, stderr io.Writer) (*node, error) {
	key, err := readKeyFile(f.key)
	if err != nil {
		return nil, err
	}
	n := &node{log: log, key: key, iface: f.iface, metricsAddr: f.metrics,
		services: services{list: nodeServices()}, unanswered: make(chan crypto.PublicKey, 64)}
	snap, err := n.openSource(f)
	if err != nil {
		return nil, err
	}
	st, err := n.load(&snap)
	if err != nil {
		n.closeSrc()
		return nil, reportMeshErrors(snap.Name, err, stderr)
	}
	n.fixed = st.fixed
	// Hand the garbage of reading and parsing the mesh back before the
	// services start. The engine allocates buffers that it may never fill
	// (the TUN's GRO tables, nearly 2 MB): the runtime does not clear
	// pages it handed back to the OS, as they come back zero, so these
	// stay out of RSS; garbage pages merely freed would be cleared, and
	// so paged in, for them: some 2 KB per peer of a node with 1,000
	// idle peers from etcd (BenchmarkEtcdJoinAmong1000).
	debug.FreeOSMemory()
	if err := n.services.start(n, st); err != nil {
		n.closeSrc()
		return nil, err
	}
	if err := n.publish(f.source.join); err != nil {
		if serr := n.stop(); serr != nil {
			err = fmt.Errorf("%w (while stopping: %w)", err, serr)
		}
		return nil, err
	}
	n.applied(snap)
	log.Info("node up", "mesh", st.info.Mesh, "node", st.info.Name, "interface", f.iface,
		"port", n.dev.Port(), "peers", st.peers, "public_key", key.PublicKey().String())
	return n, nil
}

// socketHint adds what to do to a failure to claim a socket other than
// another daemon holding it: the sockets live under /var/run.
func socketHint(err error) error {
	if err == nil || errors.Is(err, control.ErrInUse) {
		return err
	}
	return fmt.Errorf("%w (hint: run as root)", err)
}

// stop leaves the mesh and stops watching its source, then closes the
// services in reverse order of start.
func (n *node) stop() error {
	n.closeSrc()
	return n.services.close()
}

// engineConfig translates the mesh file into engine settings: every node
// but self is a peer, allowed its addresses and subnets.
func engineConfig(mesh *config.Mesh, self *config.Node, key crypto.PrivateKey) (tunnel.Config, error) {
	cfg := tunnel.Config{PrivateKey: key, ListenPort: self.Port, MTU: mesh.MTU,
		Firewall:     tunnel.Firewall{Policy: mesh.Policy(), Reject: mesh.Deny != "drop"},
		ConntrackMax: mesh.ConntrackMax}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range mesh.Nodes {
		nd := &mesh.Nodes[i]
		if nd.Name == self.Name {
			continue
		}
		pc := tunnel.PeerConfig{
			Name:                nd.Name,
			PublicKey:           nd.PublicKey,
			AllowedIPs:          nd.AllowedIPs(),
			PersistentKeepalive: self.Keepalive,
		}
		if nd.Endpoint != "" {
			ap, err := config.ResolveEndpoint(ctx, nd.Endpoint)
			if err != nil {
				return cfg, fmt.Errorf("%s: node %q: resolve endpoint %q: %w", mesh.Path, nd.Name, nd.Endpoint, err)
			}
			pc.Endpoint = ap
		}
		cfg.Peers = append(cfg.Peers, pc)
	}
	return cfg, nil
}

// kernelRoutes are the routes through the interface: every peer's
// subnets and container networks, and the overlay prefixes the addresses
// imply.
func kernelRoutes(mesh *config.Mesh, self *config.Node) []netip.Prefix {
	routes := mesh.OverlayPrefixes()
	for _, nd := range mesh.Nodes {
		if nd.Name != self.Name {
			routes = append(routes, nd.RoutedPrefixes()...)
		}
	}
	return routes
}
