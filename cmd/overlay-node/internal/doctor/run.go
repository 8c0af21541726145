package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/config"
	"github.com/overlay-node/overlay-node/policy"
)

// Options say what to diagnose.
type Options struct {
	Interface string        // the node's interface
	Peer      string        // a peer's name; "" means every peer
	PingWait  time.Duration // how long a ping through the tunnel waits for a reply
}

// DefaultPingWait covers a handshake and a few lost echoes.
const DefaultPingWait = 3 * time.Second

// Run diagnoses the node on o.Interface. It reports, and never fails: a
// check that cannot run says so in its line.
func Run(ctx context.Context, o Options) *Report {
	if o.PingWait <= 0 {
		o.PingWait = DefaultPingWait
	}
	r := &Report{Interface: o.Interface}
	st, err := fetch(ctx, o.Interface)
	if err != nil {
		fix := "start it: overlay-node up -c MESH -k KEY --interface " + o.Interface + " (or systemctl start overlay-node)"
		if errors.Is(err, fs.ErrPermission) {
			fix = "run doctor as root, like the daemon"
		}
		r.add("daemon", Fail, err.Error(), fix)
		return r
	}
	r.Node = st.Node
	r.ok("daemon", fmt.Sprintf("node %s of mesh %s answers on %s (version %s)",
		st.Node, st.Mesh, control.SocketPath(o.Interface), st.Version))
	mesh := checkMeshFile(r, st)
	kernelChecks(ctx, r, st)
	localFailed := r.Failed()

	peers := st.Peers
	if o.Peer != "" {
		peers = nil
		var names []string
		for _, p := range st.Peers {
			names = append(names, p.Name)
			if p.Name == o.Peer {
				peers = []control.Peer{p}
			}
		}
		if peers == nil {
			r.add("peer "+o.Peer, Fail, fmt.Sprintf("mesh %s has no peer %q", st.Mesh, o.Peer),
				"name one of: "+strings.Join(names, ", "))
			return r
		}
	}
	checkPeers(ctx, r, st, mesh, peers, o.PingWait, localFailed)
	return r
}

// fetch reads the daemon's status.
func fetch(ctx context.Context, iface string) (*control.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, st, err := control.FetchStatus(ctx, control.SocketPath(iface))
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	return st, nil
}

// checkMeshFile: the file the daemon runs is still what is on disk, and
// still loads. It returns the file for the policy and endpoint checks, or
// nil.
func checkMeshFile(r *Report, st *control.Status) *config.Mesh {
	const name = "mesh file"
	if st.MeshFile == "" {
		return nil
	}
	mesh, err := config.Load(st.MeshFile)
	switch {
	case err != nil:
		r.add(name, Warn, fmt.Sprintf("%s no longer loads: %v; the node runs the copy it loaded at %s",
			st.MeshFile, firstLine(err), st.ConfigLoaded.Format(time.RFC3339)),
			"overlay-node check -c "+st.MeshFile+", fix what it says, then reload")
		return nil
	case mesh.Hash != st.ConfigHash:
		r.add(name, Warn, fmt.Sprintf("%s changed on disk since the node loaded it at %s", st.MeshFile, st.ConfigLoaded.Format(time.RFC3339)),
			"reload it: systemctl reload overlay-node, or kill -HUP the daemon")
	default:
		r.ok(name, fmt.Sprintf("%s, as loaded at %s", st.MeshFile, st.ConfigLoaded.Format(time.RFC3339)))
	}
	return mesh
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// pingResult is a ping through the tunnel to one peer.
type pingResult struct {
	target netip.Addr
	rtt    time.Duration
	err    error
}

// checkPeers pings every peer through the tunnel at once, then reads the
// daemon's view again, which the pings brought up to date (a handshake,
// or attempts that went unanswered), and checks each peer.
func checkPeers(ctx context.Context, r *Report, st *control.Status, mesh *config.Mesh, peers []control.Peer, wait time.Duration, localFailed bool) {
	results := make([]pingResult, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		results[i].target = peerAddr(p, st.Addresses)
		if !results[i].target.IsValid() {
			results[i].err = errors.New("the peer has no overlay address of this node's families")
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			results[i].rtt, results[i].err = Ping(ctx, results[i].target, 56)
		})
	}
	wg.Wait()
	if after, err := fetch(ctx, st.Interface); err == nil {
		st = after
	}
	byName := map[string]control.Peer{}
	for _, p := range st.Peers {
		byName[p.Name] = p
	}
	var pol *policy.Policy
	if mesh != nil {
		pol = mesh.Policy()
	}
	for i, old := range peers {
		p, ok := byName[old.Name]
		if !ok {
			p = old
		}
		pc := peerCheck{r: r, st: st, p: p, mesh: mesh, pol: pol, ping: results[i], wait: wait, localFailed: localFailed}
		pc.endpoint()
		pc.underlayMTU()
		pc.handshake()
		pc.policy()
		pc.pingLine()
	}
}

// peerAddr is the peer's first overlay address of a family this node has.
func peerAddr(p control.Peer, self []netip.Prefix) netip.Addr {
	for _, a := range p.AllowedIPs {
		if !a.IsSingleIP() {
			continue
		}
		for _, s := range self {
			if s.Contains(a.Addr()) {
				return a.Addr()
			}
		}
	}
	return netip.Addr{}
}

// peerCheck writes the lines about one peer.
type peerCheck struct {
	r           *Report
	st          *control.Status
	p           control.Peer
	mesh        *config.Mesh
	pol         *policy.Policy
	ping        pingResult
	wait        time.Duration
	localFailed bool
}

func (c *peerCheck) name(what string) string { return "peer " + c.p.Name + ": " + what }

func (c *peerCheck) meshNode() *config.Node {
	if c.mesh == nil {
		return nil
	}
	for i := range c.mesh.Nodes {
		if c.mesh.Nodes[i].Name == c.p.Name {
			return &c.mesh.Nodes[i]
		}
	}
	return nil
}

// endpoint: the peer's endpoint is known, and its name resolves.
func (c *peerCheck) endpoint() {
	name := c.name("endpoint")
	written := ""
	if n := c.meshNode(); n != nil && n.Endpoint != "" {
		written = n.Endpoint
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := config.ResolveEndpoint(ctx, n.Endpoint); err != nil {
			c.r.add(name, Fail, fmt.Sprintf("endpoint %q in %s does not resolve: %v", n.Endpoint, c.mesh.Path, err),
				"fix the name or its DNS record, or write the address")
			return
		}
	}
	if !c.p.Endpoint.IsValid() {
		c.r.add(name, Warn, "no endpoint known: this node cannot reach the peer until the peer reaches it",
			"give the peer an endpoint in the mesh file, or a keepalive on the peer so that it reaches this node first")
		return
	}
	saw := c.p.Endpoint.String()
	if written != "" && written != saw {
		saw += fmt.Sprintf(" (mesh file: %s; the peer roamed or the name resolved there)", written)
	}
	c.r.ok(name, saw)
}

// WireGuard's overhead on the wire: the outer IP header, UDP, and the
// transport message's header and tag.
const (
	overheadIPv4 = 20 + 8 + 32
	overheadIPv6 = 40 + 8 + 32
)

// underlayMTU: a full-size overlay packet, sealed, fits the link toward
// the peer's endpoint. Where it does not, big packets are fragmented on
// the way out and lost on the way in, while pings and handshakes pass.
func (c *peerCheck) underlayMTU() {
	if !c.p.Endpoint.IsValid() {
		return
	}
	name := c.name("underlay mtu")
	ep := c.p.Endpoint.Addr()
	link, mtu, err := underlayMTU(ep)
	if err != nil {
		c.r.add(name, Warn, err.Error(), "check the route to "+ep.String())
		return
	}
	need := c.st.MTU + overheadIPv4
	if ep.Is6() {
		need = c.st.MTU + overheadIPv6
	}
	if mtu < need {
		c.r.add(name, Fail, fmt.Sprintf("%s toward %s has MTU %d; an overlay packet of the mesh MTU %d needs %d on the wire",
			link, ep, mtu, c.st.MTU, need),
			fmt.Sprintf("set [mesh] mtu = %d in the mesh file and restart the nodes, or raise %s's MTU to %d", mtu-(need-c.st.MTU), link, need))
		return
	}
	c.r.ok(name, fmt.Sprintf("%s toward %s has MTU %d, %d needed", link, ep, mtu, need))
}

// handshake: the peer answers handshakes. When it does not, probes of its
// endpoint tell which cause is likelier: the peer is down, the underlay
// cannot reach it, or it drops this node's handshakes (a key mismatch).
func (c *peerCheck) handshake() {
	name := c.name("handshake")
	age := "never"
	if c.p.LatestHandshakeAge != nil {
		age = (time.Duration(*c.p.LatestHandshakeAge) * time.Second).String() + " ago"
	}
	if c.ping.err == nil {
		c.r.ok(name, "last handshake "+age)
		return
	}
	if c.pol != nil && !c.allowsICMP() && c.p.UnansweredInitiations == 0 {
		// The ping says nothing about the peer: judge by the daemon alone.
		if c.p.LatestHandshakeAge != nil {
			c.r.ok(name, "last handshake "+age)
		} else {
			c.r.add(name, Warn, "no handshake yet, and the rules deny the ping that would start one",
				"send the peer traffic the rules allow, then run doctor again")
		}
		return
	}
	if !c.p.Endpoint.IsValid() {
		c.r.add(name, Fail, "no endpoint to send a handshake to; last handshake "+age,
			"see the endpoint check")
		return
	}
	saw := fmt.Sprintf("%d handshake attempt(s) unanswered, last handshake %s", c.p.UnansweredInitiations, age)
	if c.p.UnansweredInitiations == 0 {
		saw = fmt.Sprintf("no answer through the session of the handshake %s", age)
	}
	ep := c.p.Endpoint
	var cause, fix string
	switch probeUDP(ep, time.Second) {
	case udpRefused:
		cause = fmt.Sprintf("%s answers ICMP port unreachable: nothing listens there, the peer's daemon is down (likelier than a key or underlay problem)", ep)
		fix = fmt.Sprintf("start overlay-node on %s, or check the port it listens on against the mesh file", c.p.Name)
	case udpUnreachable:
		cause = fmt.Sprintf("%s is unreachable (ICMP host or network unreachable): an underlay problem", ep)
		fix = fmt.Sprintf("check the route and link from this host to %s", ep.Addr())
	default:
		ctx, cancel := context.WithTimeout(context.Background(), c.wait)
		_, perr := Ping(ctx, ep.Addr(), 56)
		cancel()
		keyDrops := c.st.Drops["handshake_invalid"] + c.st.Drops["bad_mac1"] + c.p.Drops["handshake_invalid"] + c.p.Drops["bad_mac1"]
		switch {
		case c.localFailed && keyDrops == 0:
			cause = fmt.Sprintf("%s sends no error for port %d: the failed checks above are the likelier cause", ep.Addr(), ep.Port())
			fix = "fix the failed checks above, then run doctor again"
		case perr == nil || keyDrops > 0:
			cause = fmt.Sprintf("%s is reachable and sends no error for port %d: something there takes the handshakes and drops them. "+
				"A key mismatch is likelier than the underlay (WireGuard drops a handshake for the wrong key without a word)", ep.Addr(), ep.Port())
			if keyDrops > 0 {
				cause += fmt.Sprintf("; this node dropped %d handshake(s) with an unknown key or a bad MAC1", keyDrops)
			}
			fix = fmt.Sprintf("compare %s's public_key in the mesh file with `overlay-node pubkey < KEYFILE` on %s, and this node's key in %s's mesh file; "+
				"if they match, look for a firewall on %s dropping UDP port %d", c.p.Name, c.p.Name, c.p.Name, c.p.Name, ep.Port())
		default:
			cause = fmt.Sprintf("%s answers neither ping nor UDP port %d: the underlay (a firewall or a route on the way) is likelier than a key problem", ep.Addr(), ep.Port())
			fix = fmt.Sprintf("check that %s is reachable from this host: security groups, firewalls on either host, routes", ep)
		}
	}
	if c.localFailed && !strings.HasPrefix(fix, "fix the failed") {
		fix = "fix the failed checks above first; then " + fix
	}
	c.r.add(name, Fail, saw+"; "+cause, fix)
}

// commonPorts are what the policy line shows the verdict for.
var commonPorts = []struct {
	proto uint8
	port  uint16
}{{policy.ProtoICMP, 0}, {policy.ProtoTCP, 22}, {policy.ProtoUDP, 53}, {policy.ProtoTCP, 80}, {policy.ProtoTCP, 443}}

// allowsICMP reports whether the rules let this node's echo request
// reach the peer; the reply is part of the flow and passes.
func (c *peerCheck) allowsICMP() bool {
	self := selfAddr(c.st, c.ping.target)
	if !self.IsValid() {
		return true
	}
	proto := uint8(policy.ProtoICMP)
	if self.Is6() {
		proto = policy.ProtoICMPv6
	}
	return c.pol.Decide(self, c.ping.target, proto, 0).Allow
}

func selfAddr(st *control.Status, peer netip.Addr) netip.Addr {
	for _, a := range st.Addresses {
		if a.Addr().Is4() == peer.Is4() {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

// policy: with [[allow]] rules, what they let through to and from the
// peer, for a few common ports.
func (c *peerCheck) policy() {
	if c.pol == nil || !c.ping.target.IsValid() {
		return
	}
	self := selfAddr(c.st, c.ping.target)
	line := func(src, dst netip.Addr) string {
		var allow, deny []string
		for _, cp := range commonPorts {
			proto := cp.proto
			if proto == policy.ProtoICMP && src.Is6() {
				proto = policy.ProtoICMPv6
			}
			what := policy.ProtoName(proto)
			if proto == policy.ProtoTCP || proto == policy.ProtoUDP {
				what = fmt.Sprintf("%d/%s", cp.port, what)
			}
			if c.pol.Decide(src, dst, proto, cp.port).Allow {
				allow = append(allow, what)
			} else {
				deny = append(deny, what)
			}
		}
		return fmt.Sprintf("allow [%s], deny [%s]", strings.Join(allow, " "), strings.Join(deny, " "))
	}
	c.r.ok(c.name("policy"), fmt.Sprintf("to %s: %s; from %s: %s", c.p.Name, line(self, c.ping.target), c.p.Name, line(c.ping.target, self)))
}

// pingLine: an ICMP echo through the tunnel came back.
func (c *peerCheck) pingLine() {
	name := c.name("ping")
	if c.ping.err == nil {
		c.r.ok(name, fmt.Sprintf("reply from %s in %s via %s", c.ping.target, c.ping.rtt.Round(10*time.Microsecond), c.p.Endpoint))
		return
	}
	if !c.ping.target.IsValid() {
		c.r.add(name, Warn, c.ping.err.Error(), "")
		return
	}
	if c.pol != nil && !c.allowsICMP() {
		c.r.add(name, Warn, fmt.Sprintf("no reply from %s: the mesh's rules deny ICMP from this node to %s", c.ping.target, c.p.Name),
			"allow icmp in an [[allow]] rule to ping through the mesh")
		return
	}
	fix := "see the handshake check"
	if hs := c.r.Find(c.name("handshake")); hs != nil && hs.Level == OK {
		fix = fmt.Sprintf("the tunnel is up but no echo came back: check the firewall and forwarding on %s", c.p.Name)
	}
	if errors.Is(c.ping.err, ErrNoReply) {
		c.r.add(name, Fail, fmt.Sprintf("no reply from %s within %s", c.ping.target, c.wait), fix)
		return
	}
	c.r.add(name, Fail, fmt.Sprintf("ping %s: %v", c.ping.target, c.ping.err), fix)
}
