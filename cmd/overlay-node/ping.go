package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/doctor"
)

const pingSynopsis = "ping [--interface NAME] [-n COUNT] [--wait DURATION] NODE"

// cmdPing pings a peer's overlay address through the tunnel and prints,
// per reply, the round-trip time, the endpoint the node used and the age
// of the session.
func cmdPing(args []string, stdout io.Writer) error {
	c := newCommand("ping", pingSynopsis, stdout)
	iface := c.String("interface", "ovl0", "interface of the running node")
	count := c.Int("n", 3, "echo requests to send; 0 means until interrupted")
	wait := c.Duration("wait", doctor.DefaultPingWait, "how long to wait for each reply")
	if err := c.Parse(args); err != nil {
		return c.parse(args)
	}
	if c.NArg() != 1 {
		return &usageError{msg: fmt.Sprintf("ping: want one NODE, got %d arguments\nusage: overlay-node %s", c.NArg(), pingSynopsis)}
	}
	name := c.Arg(0)
	st, peer, err := fetchPeer(*iface, name)
	if err != nil {
		return err
	}
	target := netip.Addr{}
	for _, a := range peer.AllowedIPs {
		for _, s := range st.Addresses {
			if a.IsSingleIP() && s.Contains(a.Addr()) && !target.IsValid() {
				target = a.Addr()
			}
		}
	}
	if !target.IsValid() {
		return fmt.Errorf("ping: peer %s has no overlay address in this node's prefixes", name)
	}
	sent, lost := 0, 0
	for i := 0; *count == 0 || i < *count; i++ {
		sent++
		if i > 0 {
			time.Sleep(time.Second)
		}
		ctx, cancel := context.WithTimeout(context.Background(), *wait)
		rtt, err := doctor.Ping(ctx, target, 56)
		cancel()
		if err != nil {
			lost++
			if !errors.Is(err, doctor.ErrNoReply) {
				return fmt.Errorf("ping: %w", err)
			}
			fmt.Fprintf(stdout, "no reply from %s (%s) within %s\n", name, target, *wait)
			continue
		}
		// The reply brought the session up: its endpoint and age now.
		_, peer, err = fetchPeer(*iface, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pong from %s (%s) via %s in %s, session %s\n",
			name, target, peer.Endpoint, rtt.Round(10*time.Microsecond), sessionAge(peer.LatestHandshakeAge))
	}
	if lost > 0 {
		return fmt.Errorf("ping: %d of %d echo requests to %s unanswered (hint: overlay-node doctor %s)", lost, sent, name, name)
	}
	return nil
}

// fetchPeer reads the node's status and the named peer in it.
func fetchPeer(iface, name string) (*control.Status, control.Peer, error) {
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	_, st, err := control.FetchStatus(ctx, control.SocketPath(iface))
	if err != nil {
		return nil, control.Peer{}, fmt.Errorf("ping: interface %s: %w (hint: is the node up? pass --interface NAME)", iface, err)
	}
	for _, p := range st.Peers {
		if p.Name == name {
			return st, p, nil
		}
	}
	return nil, control.Peer{}, &usageError{msg: fmt.Sprintf("ping: mesh %s has no peer %q\nusage: overlay-node %s", st.Mesh, name, pingSynopsis)}
}

func sessionAge(secs *int64) string {
	if secs == nil {
		return "not established"
	}
	return "from a handshake " + handshakeAge(secs)
}
