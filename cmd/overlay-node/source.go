package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/meshsource"
)

// cacheDir holds the cache of the last mesh applied from etcd, one file
// per interface, unless --cache says otherwise.
const cacheDir = "/var/lib/overlay-node"

// startTimeout bounds the first read from etcd (and the join) before a
// node falls back to its cache.
const startTimeout = 5 * time.Second

// sourceFlags say where `up` gets its mesh from, beside -c.
type sourceFlags struct {
	watch                  bool
	etcd, prefix           string
	cert, key, ca          string
	cache                  string
	join, endpoint, groups string
	leaseTTL               time.Duration
}

func (f *sourceFlags) register(c *command) {
	c.BoolVar(&f.watch, "watch", false, "with -c: reload when the mesh file changes (also a Kubernetes ConfigMap update), as on SIGHUP")
	c.StringVar(&f.etcd, "etcd", "", "get the mesh from etcd at these comma-separated client `URLS` instead of -c, and watch it")
	c.StringVar(&f.prefix, "prefix", meshsource.DefaultPrefix, "with --etcd: the key prefix of the mesh (docs/etcd.md)")
	c.StringVar(&f.cert, "etcd-cert", "", "with --etcd: client certificate `FILE` for etcd's TLS client authentication")
	c.StringVar(&f.key, "etcd-key", "", "with --etcd: the client certificate's key `FILE`")
	c.StringVar(&f.ca, "etcd-ca", "", "with --etcd: CA certificate `FILE` that signed etcd's server certificate")
	c.StringVar(&f.cache, "cache", "", "with --etcd: where to keep the last mesh applied, to start from while etcd is down (default "+cacheDir+"/INTERFACE.mesh)")
	c.StringVar(&f.join, "join", "", "with --etcd: join the mesh as node `NAME`, taking an address from its [mesh] pool")
	c.StringVar(&f.endpoint, "endpoint", "", "with --join: `IP:PORT` where the others reach this node (default none: it reaches them first)")
	c.StringVar(&f.groups, "groups", "", "with --join: comma-separated groups of this node, for [[allow]] rules")
	c.DurationVar(&f.leaseTTL, "lease-ttl", meshsource.DefaultLeaseTTL, "with --join: how long the node stays in the mesh after it stops renewing its lease")
}

// check rejects flags that do not go together.
func (f *sourceFlags) check(fromFile bool) error {
	etcdOnly := f.prefix != meshsource.DefaultPrefix || f.cert != "" || f.key != "" || f.ca != "" || f.cache != "" || f.join != ""
	switch {
	case fromFile && etcdOnly:
		return errors.New("--prefix, --etcd-*, --cache and --join go with --etcd, not -c")
	case !fromFile && f.watch:
		return errors.New("--watch goes with -c: a mesh from etcd is always watched")
	case f.join == "" && (f.endpoint != "" || f.groups != ""):
		return errors.New("--endpoint and --groups go with --join")
	case f.leaseTTL < 5*time.Second:
		return fmt.Errorf("--lease-ttl %s is too short: at least 5s", f.leaseTTL)
	}
	if f.endpoint != "" {
		if _, err := netip.ParseAddrPort(f.endpoint); err != nil {
			return fmt.Errorf("bad --endpoint %q: want IP:PORT, e.g. 203.0.113.10:51820", f.endpoint)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// openSource opens the source f names and reads the first mesh from it.
// For etcd it claims a name and address first when asked to join (see
// publish), and starts from the cache when etcd does not answer. It sets
// n.closeSrc, which the caller calls if the node does not come up.
func (n *node) openSource(f upFlags) (meshsource.Snapshot, error) {
	n.closeSrc = func() {}
	if f.mesh != "" {
		src, err := meshsource.NewFile(f.mesh, f.source.watch, n.log)
		if err != nil {
			return meshsource.Snapshot{}, err
		}
		n.src, n.closeSrc = src, func() { src.Close() }
		return src.Read(context.Background())
	}
	sf := f.source
	etcd := meshsource.EtcdConfig{Endpoints: splitList(sf.etcd), CertFile: sf.cert, KeyFile: sf.key, CAFile: sf.ca}
	cli, err := meshsource.Dial(etcd)
	if err != nil {
		return meshsource.Snapshot{}, err
	}
	src := meshsource.NewEtcd(cli, sf.prefix, n.key.PublicKey(), n.log)
	n.src = src
	n.cachePath = sf.cache
	if n.cachePath == "" {
		n.cachePath = filepath.Join(cacheDir, n.iface+".mesh")
	}
	n.closeSrc = func() {
		if n.membership != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			if err := n.membership.Leave(ctx); err != nil {
				n.log.Warn("etcd: could not leave the mesh", "err", err)
			}
			cancel()
		}
		src.Close()
		cli.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	snap, err := n.joinAndRead(ctx, src, f)
	if err != nil {
		if errors.Is(err, meshsource.ErrNameTaken) || errors.Is(err, meshsource.ErrNoMesh) {
			n.closeSrc()
			return snap, err
		}
		probeCtx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		err = meshsource.Explain(probeCtx, etcd, err)
		cancel()
		cached, cerr := meshsource.ReadCache(n.cachePath)
		if cerr != nil {
			n.closeSrc()
			return snap, fmt.Errorf("%w; and no cached mesh to start from: %w", err, cerr)
		}
		n.log.Warn("etcd unreachable at start; starting from the cached mesh", "cache", n.cachePath,
			"revision", cached.Revision, "err", err)
		snap = cached
	}
	src.Watch(snap)
	return snap, nil
}

// joinAndRead claims a place in the mesh when asked to join, then reads
// the mesh, which has this node from its claim on.
func (n *node) joinAndRead(ctx context.Context, src *meshsource.Etcd, f upFlags) (meshsource.Snapshot, error) {
	if f.source.join != "" {
		me := meshsource.Member{Name: f.source.join, PublicKey: n.key.PublicKey().String(),
			Endpoint: f.source.endpoint, Groups: splitList(f.source.groups)}
		cli := src.Client()
		m, err := meshsource.Join(ctx, cli, f.source.prefix, me, f.source.leaseTTL, n.log)
		if err != nil {
			return meshsource.Snapshot{}, err
		}
		n.membership = m
		n.log.Info("claimed a pool address", "name", me.Name, "address", m.Address(), "lease_ttl", f.source.leaseTTL)
	}
	return src.Read(ctx)
}

// publish makes a node that joined a member of the others' meshes. It is
// called once the node answers: a node that added it sooner would send its
// first handshake to a closed port, and reach it only at the retry 5 s
// later.
func (n *node) publish(name string) error {
	if n.membership == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := n.membership.Publish(ctx); err != nil {
		return err
	}
	n.log.Info("joined the mesh", "name", name, "address", n.membership.Address())
	return nil
}

// load is loadState with what the node says about its source. It lets go
// of snap's parsed mesh, which the state does not keep: held on to while
// the services start, it would be most of a large mesh's footprint.
func (n *node) load(snap *meshsource.Snapshot) (*meshState, error) {
	st, err := loadState(*snap, n.key, n.iface)
	snap.Mesh = nil
	if err != nil {
		return nil, err
	}
	st.info.Source = n.src.Kind()
	st.info.Reconnects = n.src.Reconnects
	return st, nil
}

// applied records that snap is now in force: a mesh from etcd is cached,
// to start from while etcd is down.
func (n *node) applied(snap meshsource.Snapshot) {
	if n.cachePath == "" {
		return
	}
	if err := meshsource.WriteCache(n.cachePath, snap); err != nil {
		n.log.Warn("could not cache the mesh", "err", err)
	}
}
