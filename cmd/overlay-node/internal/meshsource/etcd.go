package meshsource

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/crypto"
)

// The layout of a mesh in etcd, under a prefix P (DefaultPrefix unless
// --prefix says otherwise):
//
//	P/mesh           the pushed mesh file, as overlay-node push wrote it
//	P/members/NAME   a joined node's record (JSON, see Member), under its lease
//	P/pool/ADDR      a pool address claimed by a joined node: its name, under the same lease
//
// The mesh a node runs is P/mesh followed by one [[node]] table for every
// member, read at one revision. A record still pending (its node is
// starting) is a member of its own node's mesh only.
const (
	DefaultPrefix = "/overlay-node/"
	meshKey       = "mesh"
	membersDir    = "members/"
	poolDir       = "pool/"
)

// ErrNoMesh is returned by Etcd.Read when nothing was pushed under the
// prefix.
var ErrNoMesh = errors.New("no mesh in etcd")

// Timing of the etcd source.
const (
	// ProbeInterval is how often the watching source checks that etcd
	// answers, so that an outage is logged and the mesh read afresh once
	// it is over.
	ProbeInterval = 2 * time.Second
	// requestTimeout bounds one read or probe.
	requestTimeout = 3 * time.Second
	// retryDelay is the wait before reading again after a failure.
	retryDelay = 500 * time.Millisecond
)

// EtcdConfig says how to reach etcd.
type EtcdConfig struct {
	Endpoints []string // client URLs, e.g. https://10.0.0.1:2379
	// TLS: a client certificate and key for etcd's client certificate
	// authentication, and the CA that signed etcd's server certificate.
	// All empty for plain http.
	CertFile, KeyFile, CAFile string
}

// Dial returns a client for cfg. It does not wait for etcd to answer:
// the first request does.
func Dial(cfg EtcdConfig) (*clientv3.Client, error) {
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: requestTimeout,
		TLS:         tlsConfig,
		// Keepalives notice a dead connection within seconds, not minutes.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		// Its own logging would repeat every retry while etcd is down;
		// the source logs what matters once.
		Logger: zap.NewNop(),
		// gRPC's default backoff grows to two minutes while etcd is down;
		// a node should be back on the watch within a second of etcd.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("etcd %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return cli, nil
}

// tlsConfig is cfg's client TLS configuration, or nil for plain http.
func (cfg EtcdConfig) tlsConfig() (*tls.Config, error) {
	if cfg.CertFile == "" && cfg.KeyFile == "" && cfg.CAFile == "" {
		return nil, nil
	}
	info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
	c, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS: %w", err)
	}
	return c, nil
}

// NormalPrefix returns prefix ending in exactly one slash.
func NormalPrefix(prefix string) string {
	return strings.TrimRight(prefix, "/") + "/"
}

// Push publishes a mesh file under prefix in one transaction and returns
// the revision it was written at. The caller has validated it.
func Push(ctx context.Context, cli *clientv3.Client, prefix string, data []byte) (int64, error) {
	resp, err := cli.Txn(ctx).Then(clientv3.OpPut(NormalPrefix(prefix)+meshKey, string(data))).Commit()
	if err != nil {
		return 0, fmt.Errorf("push to etcd: %w", err)
	}
	return resp.Header.Revision, nil
}

// Etcd is a mesh kept in etcd: read at one revision, then watched.
type Etcd struct {
	// Immutable.
	cli     *clientv3.Client
	prefix  string
	self    string // this node's public key, whose pending record is a member
	log     *slog.Logger
	updates chan Snapshot

	reconnects atomic.Uint64

	stop    context.CancelFunc
	stopped sync.WaitGroup
}

// NewEtcd returns the source for the mesh under prefix, as the node with
// public key self runs it: a node that joined is in its own mesh from its
// claim on, so that it starts with its address before the others add it.
// It does not watch until Watch is called.
func NewEtcd(cli *clientv3.Client, prefix string, self crypto.PublicKey, log *slog.Logger) *Etcd {
	return &Etcd{cli: cli, prefix: NormalPrefix(prefix), self: self.String(), log: log,
		updates: make(chan Snapshot, 1), stop: func() {}}
}

// Kind implements Source.
func (e *Etcd) Kind() string { return "etcd" }

// Updates implements Source.
func (e *Etcd) Updates() <-chan Snapshot { return e.updates }

// Reconnects implements Source.
func (e *Etcd) Reconnects() uint64 { return e.reconnects.Load() }

// Close implements Source: it stops the watch. The client is the caller's.
func (e *Etcd) Close() error {
	e.stop()
	e.stopped.Wait()
	return nil
}

// Read implements Source: the pushed mesh and every member, at one
// revision; pending records but this node's are left out.
func (e *Etcd) Read(ctx context.Context) (Snapshot, error) {
	resp, err := e.cli.Txn(ctx).Then(
		clientv3.OpGet(e.prefix+meshKey),
		clientv3.OpGet(e.prefix+membersDir, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return Snapshot{}, fmt.Errorf("read mesh from etcd: %w", err)
	}
	mesh := resp.Responses[0].GetResponseRange().Kvs
	if len(mesh) == 0 {
		return Snapshot{}, fmt.Errorf("%w under %s (hint: publish one with overlay-node push -c mesh.toml --etcd URLS)", ErrNoMesh, e.prefix)
	}
	var members []Member
	for _, kv := range resp.Responses[1].GetResponseRange().Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			e.log.Warn("etcd: ignoring a member record that is not JSON", "key", string(kv.Key), "err", err)
			continue
		}
		if m.Pending && m.PublicKey != e.self {
			continue
		}
		members = append(members, m)
	}
	rev := resp.Header.Revision
	name := fmt.Sprintf("etcd:%s%s@%d", e.prefix, meshKey, rev)
	data, parsed := compose(name, mesh[0].Value, members, e.log)
	return Snapshot{Name: name, Data: data, Mesh: parsed, Revision: rev}, nil
}

// Watch delivers the mesh on Updates each time it changes after current,
// the mesh the node runs, until Close. It reads the mesh afresh after a
// change (one read for a burst of them), after a compaction, and after
// etcd was unreachable; meanwhile the node keeps the mesh it has.
func (e *Etcd) Watch(current Snapshot) {
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	e.stopped.Add(1)
	go func() {
		defer e.stopped.Done()
		e.watch(ctx, current)
	}()
}

// watch watches from current's revision, or reads afresh first when
// current came from the cache.
func (e *Etcd) watch(ctx context.Context, current Snapshot) {
	last := current.Revision // of the mesh the node was last given
	rev := current.Revision  // watch from here; 0: read afresh first
	if current.Cached {
		// Etcd did not answer at start: what it holds now may be much
		// newer, or compacted away.
		rev = 0
	}
	for ctx.Err() == nil {
		if rev == 0 {
			snap, err := e.readTimeout(ctx)
			if err != nil {
				e.log.Warn("etcd: cannot read the mesh; keeping the running mesh", "err", err)
				sleep(ctx, retryDelay)
				continue
			}
			e.offerChanged(snap, &last)
			rev = snap.Revision
		}
		reason := e.session(ctx, rev, &last)
		if ctx.Err() != nil {
			return
		}
		e.reconnects.Add(1)
		e.log.Warn("etcd: watch lost; reading the mesh afresh", "reason", reason)
		rev = 0
	}
}

// offerChanged delivers snap unless it was read at revision last, the
// revision of the mesh the node was last given, and makes last snap's.
// A new revision is delivered even when its mesh is the same, so that the
// revision in force is etcd's: a node that started from its cache at
// revision 3 runs revision 5 once it reads it, though 5 re-pushed 3.
func (e *Etcd) offerChanged(snap Snapshot, last *int64) {
	if snap.Revision != *last {
		offer(e.updates, snap)
		*last = snap.Revision
	}
}

// session watches from rev+1 and delivers every change until the watch
// is lost, and says why.
func (e *Etcd) session(ctx context.Context, rev int64, last *int64) string {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := e.cli.Watch(wctx, e.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	probe := time.NewTicker(ProbeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return "stopped"
		case <-probe.C:
			if err := e.probe(ctx); err != nil {
				e.log.Warn("etcd unreachable; keeping the running mesh", "err", err)
				e.waitReachable(ctx)
				return "etcd was unreachable"
			}
		case resp, ok := <-wch:
			switch {
			case !ok:
				return "watch closed"
			case resp.CompactRevision != 0:
				return fmt.Sprintf("revision %d was compacted", resp.CompactRevision)
			case resp.Err() != nil:
				return resp.Err().Error()
			case len(resp.Events) == 0 || e.claimsOnly(resp.Events):
				continue
			}
			snap, err := e.readTimeout(ctx)
			if err != nil {
				return err.Error()
			}
			e.offerChanged(snap, last)
		}
	}
}

// claimsOnly reports whether events only claim names and addresses for
// nodes still starting. Such claims change no mesh the node runs, so the
// mesh is not read for them: every node would read the whole mesh
// twice per join.
func (e *Etcd) claimsOnly(events []*clientv3.Event) bool {
	for _, ev := range events {
		key := string(ev.Kv.Key)
		if ev.Type != clientv3.EventTypePut {
			return false
		}
		if strings.HasPrefix(key, e.prefix+poolDir) {
			continue
		}
		var m Member
		if !strings.HasPrefix(key, e.prefix+membersDir) || json.Unmarshal(ev.Kv.Value, &m) != nil || !m.Pending {
			return false
		}
	}
	return true
}

// probe checks that etcd answers.
func (e *Etcd) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	_, err := e.cli.Get(ctx, e.prefix+meshKey, clientv3.WithCountOnly())
	return err
}

// waitReachable returns once etcd answers again, or ctx is done.
func (e *Etcd) waitReachable(ctx context.Context) {
	for ctx.Err() == nil {
		sleep(ctx, retryDelay)
		if e.probe(ctx) == nil {
			e.log.Info("etcd reachable again")
			return
		}
	}
}

func (e *Etcd) readTimeout(ctx context.Context) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return e.Read(ctx)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// compose is the mesh a node runs: the pushed file followed by a [[node]]
// for every member that fits it. A member whose name, key or address a
// pushed node (or an earlier member) has, whose address is outside the
// pool, or whose record does not validate, is left out and logged, so
// that no member record can make a revision invalid. A pushed file that
// is itself invalid is returned as it is, for the node to reject with its
// positions.
//
// When members were added, compose has parsed the whole mesh to check
// them, and returns it parsed too, so that the node does not parse it
// again; otherwise the returned mesh is nil.
func compose(name string, pushed []byte, members []Member, log *slog.Logger) ([]byte, *config.Mesh) {
	if len(members) == 0 {
		return pushed, nil
	}
	mesh, err := config.Parse(name, pushed)
	if err != nil {
		return pushed, nil
	}
	names := make(map[string]bool)
	keys := make(map[string]bool)
	addrs := make(map[netip.Addr]bool)
	for _, n := range mesh.Nodes {
		names[n.Name] = true
		keys[n.PublicKey.String()] = true
		for _, a := range n.Addresses {
			addrs[a.Addr()] = true
		}
	}
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	fit := members[:0]
	for _, m := range members {
		addr, err := netip.ParsePrefix(m.Address)
		switch {
		case err != nil || !mesh.Pool.Contains(addr.Addr()):
			log.Warn("etcd: ignoring member: its address is not in the pool", "member", m.Name, "address", m.Address)
			continue
		case names[m.Name] || keys[m.PublicKey] || addrs[addr.Addr()]:
			log.Warn("etcd: ignoring member: its name, key or address is taken", "member", m.Name)
			continue
		}
		names[m.Name], keys[m.PublicKey], addrs[addr.Addr()] = true, true, true
		fit = append(fit, m)
	}
	// What else can be wrong with a record (a name that is no DNS label, a
	// bad key or endpoint) shows in the whole mesh, at the record's lines.
	for {
		data, lines := appendMembers(pushed, fit)
		mesh, err := config.Parse(name, data)
		var list config.ErrorList
		switch {
		case err == nil:
			return data, mesh
		case !errors.As(err, &list):
			return data, nil
		}
		bad := make(map[int]bool)
		for _, e := range list {
			i, _ := slices.BinarySearch(lines, e.Line+1)
			if i == 0 || e.Line >= lines[len(lines)-1] {
				return data, nil // not a member's fault
			}
			bad[i-1] = true
			log.Warn("etcd: ignoring member: its record is invalid", "member", fit[i-1].Name, "err", e.Msg)
		}
		kept := fit[:0]
		for i, m := range fit {
			if !bad[i] {
				kept = append(kept, m)
			}
		}
		fit = kept
	}
}

// appendMembers returns pushed followed by the members' [[node]] tables,
// and the line each table starts at, and, last, the line after them. It
// writes into one buffer sized up front: with many members this text is
// most of what a read allocates.
func appendMembers(pushed []byte, members []Member) ([]byte, []int) {
	size := len(pushed) + 1
	for _, m := range members {
		size += m.tomlSize()
	}
	b := make([]byte, 0, size)
	b = append(b, pushed...)
	if len(pushed) > 0 && pushed[len(pushed)-1] != '\n' {
		b = append(b, '\n')
	}
	line := bytes.Count(b, []byte("\n")) + 1
	lines := make([]int, 0, len(members)+1)
	for _, m := range members {
		lines = append(lines, line)
		start := len(b)
		b = m.appendTOML(b)
		line += bytes.Count(b[start:], []byte("\n"))
	}
	lines = append(lines, line)
	return b, lines
}

// Client is the etcd client the source reads with.
func (e *Etcd) Client() *clientv3.Client { return e.cli }
