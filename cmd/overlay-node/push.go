package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/overlay-node/overlay-node/cmd/overlay-node/internal/meshsource"
)

const pushSynopsis = "push -c mesh.toml --etcd URLS [--prefix P] [--etcd-cert FILE --etcd-key FILE --etcd-ca FILE]"

// pushTimeout bounds the whole push; probeTimeout the probe that says why
// etcd did not answer.
const (
	pushTimeout  = 10 * time.Second
	probeTimeout = time.Second
)

// cmdPush validates a mesh file like check, then publishes it to etcd in
// one transaction, for every node running with --etcd to apply.
func cmdPush(args []string, stdout, stderr io.Writer) error {
	c := newCommand("push", pushSynopsis, stdout)
	meshPath := c.String("c", "", "mesh file to publish (required)")
	urls := c.String("etcd", "", "etcd client `URLS`, comma-separated (required)")
	prefix := c.String("prefix", meshsource.DefaultPrefix, "the key prefix of the mesh (docs/etcd.md)")
	cert := c.String("etcd-cert", "", "client certificate `FILE` for etcd's TLS client authentication")
	key := c.String("etcd-key", "", "the client certificate's key `FILE`")
	ca := c.String("etcd-ca", "", "CA certificate `FILE` that signed etcd's server certificate")
	if err := c.parse(args); err != nil {
		return err
	}
	if *meshPath == "" || *urls == "" {
		return &usageError{msg: "push: -c and --etcd are required\nusage: overlay-node " + pushSynopsis}
	}
	mesh, err := loadMesh(*meshPath, stderr)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*meshPath)
	if err != nil {
		return err
	}
	etcd := meshsource.EtcdConfig{Endpoints: splitList(*urls), CertFile: *cert, KeyFile: *key, CAFile: *ca}
	cli, err := meshsource.Dial(etcd)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	rev, err := meshsource.Push(ctx, cli, *prefix, data)
	if errors.Is(err, context.DeadlineExceeded) {
		probeCtx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		return fmt.Errorf("%w: etcd at %s did not answer within %s (hint: check --etcd and that etcd runs; with TLS, pass --etcd-cert, --etcd-key and --etcd-ca)",
			meshsource.Explain(probeCtx, etcd, err), *urls, pushTimeout)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: pushed mesh %q, %d nodes, to %s: revision %d\n",
		mesh.Path, mesh.Name, len(mesh.Nodes), meshsource.NormalPrefix(*prefix), rev)
	return nil
}
