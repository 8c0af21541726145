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

	"golang.zx2c4.com/wireguard/tun"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/metrics"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/uapi"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/encap"
	"github.com/overlay-node/overlay-node/routing"
	"github.com/overlay-node/overlay-node/tunnel"
)

const upSynopsis = "up -c mesh.toml -k node.key [--interface NAME] [--metrics ADDR] [--log-level LEVEL] [--log-format text|json]"

// upFlags are the settings of `up`.
type upFlags struct {
	mesh, key, iface, metrics, logLevel, logFormat string
}

func cmdUp(args []string, stdout, stderr io.Writer) error {
	c := newCommand("up", upSynopsis, stdout)
	var f upFlags
	c.StringVar(&f.mesh, "c", "", "mesh file shared by all nodes (required)")
	c.StringVar(&f.key, "k", "", "this node's private key file, mode 0600 (required)")
	c.StringVar(&f.iface, "interface", "ovl0", "TUN interface name")
	c.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on `ADDR`/metrics, e.g. 127.0.0.1:9586 (default off)")
	c.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	c.StringVar(&f.logFormat, "log-format", "text", "text or json")
	if err := c.parse(args); err != nil {
		return err
	}
	if f.mesh == "" || f.key == "" {
		return &usageError{msg: "up: -c and -k are required\nusage: overlay-node " + upSynopsis}
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
	// Start-up garbage (the parsed mesh file, the engine config) can be a
	// large part of a big mesh's footprint: now that nothing refers to it,
	// hand it back before settling down.
	debug.FreeOSMemory()
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			n.reload()
			continue
		}
		log.Info("shutting down", "signal", sig.String())
		break
	}
	return n.stop()
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

// node is a running daemon and what must be undone to stop it.
type node struct {
	log      *slog.Logger
	dev      *tunnel.Device
	undo     []func() error // run in reverse order
	meshPath string
	key      crypto.PrivateKey
	iface    string

	// What is running, replaced by a successful reload. Only this is kept
	// of the mesh file, not the parsed file itself: on a large mesh that
	// would be most of an idle node's memory.
	fixed  fixedSettings
	info   control.Node   // what status and metrics say about this node
	routes []netip.Prefix // routed through the interface
	ctl    *control.Server
	col    *metrics.Collector // nil without --metrics
}

// startNode brings the node up. On any error it undoes whatever it did,
// so a failed start leaves no interface, route or socket behind.
func startNode(f upFlags, log *slog.Logger, stderr io.Writer) (_ *node, err error) {
	key, err := readKeyFile(f.key)
	if err != nil {
		return nil, err
	}
	mesh, err := loadMesh(f.mesh, stderr)
	if err != nil {
		return nil, err
	}
	loaded := time.Now()
	self, err := mesh.Self(key.PublicKey())
	if err != nil {
		return nil, err
	}

	n := &node{log: log, meshPath: f.mesh, key: key, iface: f.iface, fixed: fixedOf(mesh, self),
		info: nodeInfo(mesh, self, f.iface, loaded), routes: kernelRoutes(mesh, self)}
	defer func() {
		if err != nil {
			n.stop()
		}
	}()
	// The sockets are claimed before anything else: the UAPI socket path is
	// global across network namespaces, so it is what tells a second daemon
	// on this interface name to fail at once.
	uapiSrv, err := uapi.Listen(f.iface)
	if err != nil {
		return nil, socketHint(err)
	}
	n.undo = append(n.undo, uapiSrv.Close)
	ctlSrv, err := control.Listen(control.SocketPath(f.iface))
	if err != nil {
		return nil, socketHint(err)
	}
	n.ctl = ctlSrv
	n.undo = append(n.undo, ctlSrv.Close)
	if _, err := net.InterfaceByName(f.iface); err == nil {
		return nil, fmt.Errorf("interface %s is in use: it already exists (hint: stop the overlay-node running on it, or pass --interface NAME)", f.iface)
	}
	cfg, err := engineConfig(mesh, self, key)
	if err != nil {
		return nil, err
	}

	tdev, err := tun.CreateTUN(f.iface, mesh.MTU)
	if err != nil {
		return nil, fmt.Errorf("create TUN %s: %w (hint: run as root)", f.iface, err)
	}
	n.dev, err = tunnel.New(tdev, encap.NewBind(), cfg, tunnel.Options{Logger: log})
	if err != nil {
		tdev.Close()
		return nil, err
	}
	n.undo = append(n.undo, n.dev.Close)
	undoRoutes, err := routing.ConfigureInterface(f.iface, mesh.MTU, self.Addresses, n.routes)
	if err != nil {
		return nil, err
	}
	n.undo = append(n.undo, undoRoutes)
	if err := n.dev.Up(); err != nil {
		return nil, err
	}
	uapiSrv.Serve(n.dev, log)
	ctlSrv.Serve(n.dev, n.info, log)
	if f.metrics != "" {
		// Bound once the interface has its addresses: ADDR may be this
		// node's overlay address, for a Prometheus that scrapes over the mesh.
		metricsSrv, err := metrics.Listen(f.metrics)
		if err != nil {
			return nil, err
		}
		n.undo = append(n.undo, metricsSrv.Close)
		n.col = metrics.NewCollector(n.dev, n.info)
		metricsSrv.Serve(metrics.NewRegistry(n.col), log)
	}
	log.Info("node up", "mesh", mesh.Name, "node", self.Name, "interface", f.iface,
		"port", n.dev.Port(), "peers", len(cfg.Peers), "public_key", key.PublicKey().String())
	return n, nil
}

// socketHint adds what to do to a failure to claim a socket other than
// another daemon holding it: the sockets live under /var/run.
func socketHint(err error) error {
	if errors.Is(err, control.ErrInUse) {
		return err
	}
	return fmt.Errorf("%w (hint: run as root)", err)
}

// stop undoes startNode in reverse order.
func (n *node) stop() error {
	var errs []error
	for i := len(n.undo) - 1; i >= 0; i-- {
		errs = append(errs, n.undo[i]())
	}
	n.undo = nil
	return errors.Join(errs...)
}

// engineConfig translates the mesh file into engine settings: every node
// but self is a peer, allowed its addresses and subnets.
func engineConfig(mesh *config.Mesh, self *config.Node, key crypto.PrivateKey) (tunnel.Config, error) {
	cfg := tunnel.Config{PrivateKey: key, ListenPort: self.Port, MTU: mesh.MTU}
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
// subnets and the overlay prefixes the addresses imply.
func kernelRoutes(mesh *config.Mesh, self *config.Node) []netip.Prefix {
	routes := mesh.OverlayPrefixes()
	for _, nd := range mesh.Nodes {
		if nd.Name != self.Name {
			routes = append(routes, nd.Subnets...)
		}
	}
	return routes
}
