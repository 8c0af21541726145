package meshsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlay-node/overlay-node/config"
)

// DefaultLeaseTTL is how long a joined node stays in the mesh after it
// stops renewing its lease: after a crash, say.
const DefaultLeaseTTL = 30 * time.Second

// joinKeepalive is the keepalive a joined node without an endpoint gets:
// the others cannot reach it first, so it keeps its NAT mapping open.
const joinKeepalive = "25s"

// ErrNameTaken is returned by Join when another key holds the name.
var ErrNameTaken = errors.New("name is taken")

// Member is the record of a joined node, as stored in P/members/NAME.
type Member struct {
	Name      string   `json:"name"`
	PublicKey string   `json:"public_key"`         // base64
	Address   string   `json:"address"`            // claimed from the pool, with the pool's prefix length
	Endpoint  string   `json:"endpoint,omitempty"` // host:port; empty when the others cannot reach it first
	Groups    []string `json:"groups,omitempty"`
	// Pending marks the claim of a node still starting: until it answers,
	// its record is in no mesh but its own.
	Pending bool `json:"pending,omitempty"`
}

// appendTOML appends m as a [[node]] table to b. The values are quoted
// as fmt's %q quotes them.
func (m Member) appendTOML(b []byte) []byte {
	b = append(b, "\n# joined through etcd\n[[node]]\nname = "...)
	b = strconv.AppendQuote(b, m.Name)
	b = append(b, "\npublic_key = "...)
	b = strconv.AppendQuote(b, m.PublicKey)
	b = append(b, "\naddress = "...)
	b = strconv.AppendQuote(b, m.Address)
	if m.Endpoint != "" {
		b = append(b, "\nendpoint = "...)
		b = strconv.AppendQuote(b, m.Endpoint)
	} else {
		b = append(b, "\nkeepalive = "...)
		b = strconv.AppendQuote(b, joinKeepalive)
	}
	b = append(b, '\n')
	if len(m.Groups) > 0 {
		b = append(b, "groups = ["...)
		for i, g := range m.Groups {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = strconv.AppendQuote(b, g)
		}
		b = append(b, "]\n"...)
	}
	return b
}

// tomlSize is about the length of m's [[node]] table, to size a buffer.
func (m Member) tomlSize() int {
	n := 96 + len(m.Name) + len(m.PublicKey) + len(m.Address) + len(m.Endpoint)
	for _, g := range m.Groups {
		n += len(g) + 4
	}
	return n
}

// Membership is a node's registration in a mesh kept in etcd: its record
// and its pool address, both under one lease that it keeps alive.
type Membership struct {
	// Immutable.
	cli    *clientv3.Client
	prefix string
	ttl    time.Duration
	log    *slog.Logger

	// Set by Join before the keepalive starts.
	stop context.CancelFunc
	kept sync.WaitGroup

	mu        sync.Mutex // guards what follows
	me        Member     // the record as written, Address as claimed
	rev       int64      // the revision it was written at
	published bool       // Publish succeeded: a join again writes the record published
	lease     clientv3.LeaseID
}

// Join claims a place in the mesh under prefix for me: it takes a lease
// of ttl, claims the lowest free pool address (me.Address first, when set
// and free) and writes the record, pending, both in one compare-and-swap
// transaction, so that two nodes joining at once never get the same name
// or address. The node is a member of the others' meshes once it calls
// Publish. Join keeps the lease alive until Leave, and joins again,
// keeping its address when it can, if the lease is ever lost.
func Join(ctx context.Context, cli *clientv3.Client, prefix string, me Member, ttl time.Duration, log *slog.Logger) (*Membership, error) {
	m := &Membership{cli: cli, prefix: NormalPrefix(prefix), ttl: ttl, log: log, me: me}
	if err := m.join(ctx); err != nil {
		return nil, err
	}
	kctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.kept.Add(1)
	go func() {
		defer m.kept.Done()
		m.keep(kctx)
	}()
	return m, nil
}

// Address is the overlay address the node claimed.
func (m *Membership) Address() netip.Prefix {
	m.mu.Lock()
	defer m.mu.Unlock()
	return netip.MustParsePrefix(m.me.Address)
}

// Publish writes the record in place of the claim, published, so that
// the other nodes add the node to their meshes. Call it once the node
// answers on its endpoint: a node that added it sooner would send its
// handshake to a closed port and retry only after 5 s. It fails if the
// claim was lost meanwhile.
func (m *Membership) Publish(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := m.me
	rec.Pending = false
	val, _ := json.Marshal(rec)
	nameKey := m.prefix + membersDir + rec.Name
	resp, err := m.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(nameKey), "=", m.rev)).
		Then(clientv3.OpPut(nameKey, string(val), clientv3.WithLease(m.lease))).Commit()
	switch {
	case err != nil:
		return fmt.Errorf("join: publish %s: %w", nameKey, err)
	case !resp.Succeeded:
		return fmt.Errorf("join: publish %s: the claim written at revision %d is gone (its lease expired?)", nameKey, m.rev)
	}
	m.me, m.rev, m.published = rec, resp.Header.Revision, true
	return nil
}

// Leave revokes the lease: the record and the address claim go at once,
// and the others drop the node from their meshes.
func (m *Membership) Leave(ctx context.Context) error {
	m.stop()
	m.kept.Wait()
	m.mu.Lock()
	lease := m.lease
	m.mu.Unlock()
	if _, err := m.cli.Revoke(ctx, lease); err != nil {
		return fmt.Errorf("leave the mesh: %w (the lease expires in %s)", err, m.ttl)
	}
	return nil
}

// join claims a name and an address under a new lease, and writes the
// record pending until Publish, published after.
func (m *Membership) join(ctx context.Context) error {
	m.mu.Lock()
	me := m.me
	me.Pending = !m.published
	m.mu.Unlock()
	get, err := m.cli.Txn(ctx).Then(
		clientv3.OpGet(m.prefix+meshKey),
		clientv3.OpGet(m.prefix+membersDir+me.Name),
		clientv3.OpGet(m.prefix+poolDir, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
	).Commit()
	if err != nil {
		return fmt.Errorf("join: read the mesh from etcd: %w", err)
	}
	kvs := get.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return fmt.Errorf("join: %w under %s (hint: publish one with a [mesh] pool first, with overlay-node push)", ErrNoMesh, m.prefix)
	}
	mesh, err := config.Parse(fmt.Sprintf("etcd:%s%s@%d", m.prefix, meshKey, get.Header.Revision), kvs[0].Value)
	if err != nil {
		return fmt.Errorf("join: the mesh in etcd is invalid:\n%w", err)
	}
	if !mesh.Pool.IsValid() {
		return fmt.Errorf("join: the mesh in etcd has no [mesh] pool (hint: add pool = \"10.100.1.0/24\" under [mesh] and push it)")
	}
	used := make(map[netip.Addr]bool)
	for _, n := range mesh.Nodes {
		if n.Name == me.Name {
			return fmt.Errorf("join: %w: node %q is in the pushed mesh (hint: join under another name)", ErrNameTaken, n.Name)
		}
		if n.PublicKey.String() == me.PublicKey {
			return fmt.Errorf("join: this key is node %q of the pushed mesh (hint: run it without --join)", n.Name)
		}
		for _, a := range n.Addresses {
			used[a.Addr()] = true
		}
	}
	// A record under our name with our key is ours, from before a restart
	// or a lost lease: take it over, address and all.
	nameKey := m.prefix + membersDir + me.Name
	nameCmp := clientv3.Compare(clientv3.CreateRevision(nameKey), "=", 0)
	if old := get.Responses[1].GetResponseRange().Kvs; len(old) > 0 {
		var rec Member
		if json.Unmarshal(old[0].Value, &rec) != nil || rec.PublicKey != me.PublicKey {
			return fmt.Errorf("join: %w: another key holds %s (hint: join under another name, or wait for its lease to expire)", ErrNameTaken, nameKey)
		}
		me.Address = rec.Address
		nameCmp = clientv3.Compare(clientv3.ModRevision(nameKey), "=", old[0].ModRevision)
	}
	for _, kv := range get.Responses[2].GetResponseRange().Kvs {
		if a, err := netip.ParseAddr(strings.TrimPrefix(string(kv.Key), m.prefix+poolDir)); err == nil {
			used[a] = true
		}
	}
	if err := checkRecord(mesh, kvs[0].Value, me, used); err != nil {
		return err
	}
	lease, err := m.cli.Grant(ctx, int64(m.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("join: lease: %w", err)
	}
	try := func(addr netip.Prefix, own bool) (bool, error) {
		rec := me
		rec.Address = addr.String()
		val, _ := json.Marshal(rec)
		poolKey := m.prefix + poolDir + addr.Addr().String()
		poolCmp := clientv3.Compare(clientv3.CreateRevision(poolKey), "=", 0)
		if own {
			poolCmp = clientv3.Compare(clientv3.Value(poolKey), "=", me.Name)
		}
		resp, err := m.cli.Txn(ctx).If(nameCmp, poolCmp).Then(
			clientv3.OpPut(nameKey, string(val), clientv3.WithLease(lease.ID)),
			clientv3.OpPut(poolKey, me.Name, clientv3.WithLease(lease.ID)),
		).Else(clientv3.OpGet(nameKey)).Commit()
		if err != nil {
			return false, fmt.Errorf("join: claim %s: %w", addr, err)
		}
		if resp.Succeeded {
			m.mu.Lock()
			m.me, m.rev, m.lease = rec, resp.Header.Revision, lease.ID
			m.mu.Unlock()
			return true, nil
		}
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 && !own {
			return false, fmt.Errorf("join: %w: another node joined as %q just now (hint: join under another name)", ErrNameTaken, me.Name)
		}
		return false, nil
	}
	if me.Address != "" {
		if prev, err := netip.ParsePrefix(me.Address); err == nil && mesh.Pool.Contains(prev.Addr()) {
			if ok, err := try(netip.PrefixFrom(prev.Addr(), mesh.Pool.Bits()), used[prev.Addr()]); ok || err != nil {
				return m.revokeOn(lease.ID, err)
			}
		}
		// Our old record is gone or its address was taken: claim anew.
		nameCmp = clientv3.Compare(clientv3.CreateRevision(nameKey), "=", 0)
	}
	var claimed bool
	var cerr error
	mesh.PoolAddresses(func(addr netip.Prefix) bool {
		if used[addr.Addr()] {
			return true
		}
		claimed, cerr = try(addr, false)
		return !claimed && cerr == nil
	})
	if cerr == nil && !claimed {
		cerr = fmt.Errorf("join: the pool %s is full (hint: widen [mesh] pool and push it)", mesh.Pool)
	}
	return m.revokeOn(lease.ID, cerr)
}

// revokeOn gives the lease back when the join failed.
func (m *Membership) revokeOn(lease clientv3.LeaseID, err error) error {
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		m.cli.Revoke(ctx, lease)
	}
	return err
}

// keep renews the lease until ctx is done, and joins again when it is
// lost: etcd was unreachable for longer than the TTL, say.
func (m *Membership) keep(ctx context.Context) {
	for ctx.Err() == nil {
		m.mu.Lock()
		lease := m.lease
		m.mu.Unlock()
		ch, err := m.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ch {
			}
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Warn("etcd: lease lost; joining again", "lease", fmt.Sprintf("%x", lease))
		for ctx.Err() == nil {
			jctx, cancel := context.WithTimeout(ctx, requestTimeout)
			err := m.join(jctx)
			cancel()
			if err == nil {
				m.log.Info("etcd: joined again", "address", m.Address())
				break
			}
			m.log.Warn("etcd: join again failed; retrying", "err", err)
			sleep(ctx, time.Second)
		}
	}
}

// checkRecord refuses a record that would not validate in the mesh (a
// name that is no DNS label, a bad endpoint or group), before it is
// written: the others would leave it out.
func checkRecord(mesh *config.Mesh, pushed []byte, me Member, used map[netip.Addr]bool) error {
	var addr netip.Prefix
	mesh.PoolAddresses(func(a netip.Prefix) bool {
		addr = a
		return used[a.Addr()]
	})
	if !addr.IsValid() || used[addr.Addr()] {
		return fmt.Errorf("join: the pool %s is full (hint: widen [mesh] pool and push it)", mesh.Pool)
	}
	me.Address = addr.String()
	data, lines := appendMembers(pushed, []Member{me})
	if _, err := config.Parse("--join", data); err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			var msgs []string
			for _, e := range list {
				if e.Line >= lines[0] {
					msgs = append(msgs, e.Key+": "+e.Msg)
				}
			}
			if len(msgs) > 0 {
				return fmt.Errorf("join: this node's record is invalid: %s", strings.Join(msgs, "; "))
			}
		}
		return fmt.Errorf("join: %w", err)
	}
	return nil
}
