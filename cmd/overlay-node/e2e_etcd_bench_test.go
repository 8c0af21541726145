package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/meshsource"
	"github.com/overlay-node/overlay-node/crypto"
	"github.com/overlay-node/overlay-node/internal/etcdtest"
	"github.com/overlay-node/overlay-node/internal/nstest"
)

// BenchmarkEtcdJoinAmong1000 runs real nodes on a mesh kept in etcd with
// 1,000 idle members registered (no endpoint, as hosts behind NAT that
// have not called in). Node a runs with --etcd; each iteration starts a
// node with --join on another host and measures, from the moment its
// record is published in etcd, the time until a has applied a mesh with
// it (ms/join-to-mesh) and until a ping from a, started at that moment,
// is answered (ms/registration-to-reachable): a reaches x first, as any
// running node may, so a handshake sent before x listens would show as
// WireGuard's 5 s retry. It then checks that x reaches a. It reports a's
// memory per idle peer: its RSS with the members less its RSS before they
// registered, over 1,000.
func BenchmarkEtcdJoinAmong1000(b *testing.B) {
	const members = 1000
	nstest.RequireRoot(b)
	etcdtest.Require(b)
	lan := nstest.NewLAN(b, 2)
	bin := nstest.BuildOverlayNode(b)
	srv := etcdtest.StartOn(b, lan.Hosts[0])
	dir := b.TempDir()
	const prefix = "/bench/"

	keyFile := func(name string) (crypto.PrivateKey, string) {
		k, err := crypto.GeneratePrivateKey()
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, name+".key")
		if err := os.WriteFile(path, []byte(k.Base64()+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		return k, path
	}
	aKey, aKeyPath := keyFile("a")
	mesh := fmt.Sprintf("[mesh]\nname = \"bench\"\nport = 51820\npool = \"10.100.16.0/20\"\n\n"+
		"[[node]]\nname = \"a\"\npublic_key = %q\naddress = \"10.100.0.1/16\"\nendpoint = \"%s:51820\"\n",
		aKey.PublicKey().String(), lan.Hosts[0].Addr)
	cli := srv.Client()
	defer cli.Close()
	if _, err := meshsource.Push(b.Context(), cli, prefix, []byte(mesh)); err != nil {
		b.Fatal(err)
	}

	// startA runs node a and waits until it is up with want peers and has
	// settled, as the scale test lets a node settle before reading RSS.
	aIface := nstest.UniqueIfName("ovl")
	startA := func(want int) *nstest.Proc {
		p := lan.Hosts[0].Start(b, bin, "up", "--etcd", srv.URL, "--prefix", prefix, "-k", aKeyPath,
			"--interface", aIface, "--cache", filepath.Join(dir, "a.cache"))
		line := fmt.Sprintf("peers=%d ", want)
		if !poll(60*time.Second, func() bool { return strings.Contains(p.Output(), line) }) {
			b.Fatalf("a did not come up with %d peers:\n%s", want, p.Output())
		}
		time.Sleep(2 * time.Second)
		return p
	}
	a := startA(0)
	empty := rssBytes(b, a.PID())
	a.Signal(syscall.SIGTERM)
	if err := a.Wait(10 * time.Second); err != nil {
		b.Fatalf("a did not stop: %v", err)
	}
	for i := range members {
		k, err := crypto.GeneratePrivateKey()
		if err != nil {
			b.Fatal(err)
		}
		m, err := meshsource.Join(b.Context(), cli, prefix, meshsource.Member{Name: fmt.Sprintf("idle%d", i),
			PublicKey: k.PublicKey().String()}, time.Minute, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		defer m.Leave(b.Context())
		if err := m.Publish(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	a = startA(members)
	full := rssBytes(b, a.PID())

	_, xKeyPath := keyFile("x")
	var toMesh, toReach time.Duration
	for i := range b.N {
		name := fmt.Sprintf("x%d", i)
		off := len(a.Output())
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Second)
		records := cli.Watch(ctx, prefix+"members/"+name)
		x := lan.Hosts[1].Start(b, bin, "up", "--etcd", srv.URL, "--prefix", prefix, "-k", xKeyPath,
			"--interface", nstest.UniqueIfName("ovl"), "--cache", filepath.Join(dir, "x.cache"),
			"--join", name, "--endpoint", lan.Hosts[1].Addr.String()+":51820")
		rec, registered := published(ctx, records)
		if rec.Address == "" {
			b.Fatalf("x did not register:\n%s", x.Output())
		}
		addr := strings.Split(rec.Address, "/")[0]
		// a reaches x first, as any running node may once x is registered.
		reached := make(chan error, 1)
		var reachedAt time.Time
		go func() {
			out, err := lan.Hosts[0].Exec(ctx, "ping", "-c", "1", "-i", "0.01", "-w", "20", addr)
			reachedAt = time.Now()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, out)
			}
			reached <- err
		}()
		var applied time.Time
		if !poll(10*time.Second, func() (ok bool) { applied, ok = reloadedWith(a.Output()[off:], members+1); return ok }) {
			b.Fatalf("a did not apply a mesh with x:\n%s", a.Output())
		}
		toMesh += applied.Sub(registered)
		withX := len(a.Output())
		if err := <-reached; err != nil {
			b.Fatalf("a -> x at %s: %v\n%s", addr, err, x.Output())
		}
		toReach += reachedAt.Sub(registered)
		cancel()
		if err := nstest.Ping(b, lan.Hosts[1], "10.100.0.1"); err != nil {
			b.Fatalf("x -> a: %v\n%s", err, x.Output())
		}
		x.Signal(syscall.SIGTERM)
		if err := x.Wait(10 * time.Second); err != nil {
			b.Fatalf("x did not stop: %v", err)
		}
		// x left: wait for a to drop it before the next one joins.
		if !poll(10*time.Second, func() (ok bool) { _, ok = reloadedWith(a.Output()[withX:], members); return ok }) {
			b.Fatalf("a did not drop x:\n%s", a.Output())
		}
	}
	b.ReportMetric(float64(toMesh.Microseconds())/1000/float64(b.N), "ms/join-to-mesh")
	b.ReportMetric(float64(toReach.Microseconds())/1000/float64(b.N), "ms/registration-to-reachable")
	b.ReportMetric(float64(full-empty)/members, "B/idle-peer")
}

// rssBytes reads VmRSS of the process pid.
func rssBytes(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// published waits on a watch of a member's record until the record is
// published, and returns it and when it was seen.
func published(ctx context.Context, records clientv3.WatchChan) (meshsource.Member, time.Time) {
	for {
		select {
		case resp := <-records:
			for _, ev := range resp.Events {
				var rec meshsource.Member
				if ev.Type == clientv3.EventTypePut && json.Unmarshal(ev.Kv.Value, &rec) == nil && !rec.Pending {
					return rec, time.Now()
				}
			}
		case <-ctx.Done():
			return meshsource.Member{}, time.Time{}
		}
	}
}

// reloadedWith reports whether out, a node's log, says it reloaded a mesh
// with peers peers, and when: the time its log line gives, to the
// millisecond.
func reloadedWith(out string, peers int) (time.Time, bool) {
	want := fmt.Sprintf(" peers=%d ", peers)
	for line := range strings.Lines(out) {
		if strings.Contains(line, `msg="mesh file reloaded"`) && strings.Contains(line, want) {
			stamp, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
			at, err := time.Parse(time.RFC3339Nano, stamp)
			return at, err == nil
		}
	}
	return time.Time{}, false
}
