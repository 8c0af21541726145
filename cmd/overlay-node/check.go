package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/overlay-node/overlay-node/config"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	c := newCommand("check", "check -c mesh.toml [-k node.key]", stdout)
	meshPath := c.String("c", "", "mesh file (required)")
	keyPath := c.String("k", "", "private key file: also check that this node is in the mesh")
	if err := c.parse(args); err != nil {
		return err
	}
	if *meshPath == "" {
		return &usageError{msg: "check: -c is required\nusage: overlay-node " + c.synopsis}
	}
	mesh, err := loadMesh(*meshPath, stderr)
	if err != nil {
		return err
	}
	if *keyPath != "" {
		key, err := readKeyFile(*keyPath)
		if err != nil {
			return err
		}
		self, err := mesh.Self(key.PublicKey())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok: mesh %q, %d nodes; this key is node %q\n", mesh.Path, mesh.Name, len(mesh.Nodes), self.Name)
		return nil
	}
	fmt.Fprintf(stdout, "%s: ok: mesh %q, %d nodes\n", mesh.Path, mesh.Name, len(mesh.Nodes))
	return nil
}

// loadMesh loads and validates the mesh file, printing every problem, and
// every warning of a valid file, on its own line as file:line:col: message.
func loadMesh(path string, stderr io.Writer) (*config.Mesh, error) {
	mesh, err := config.Load(path)
	if err == nil {
		for _, w := range mesh.Warnings() {
			fmt.Fprintln(stderr, w)
		}
	}
	return mesh, reportMeshErrors(path, err, stderr)
}

// reportMeshErrors prints every problem of an invalid mesh file, one a
// line, and returns errReported; any other error it returns as it is.
func reportMeshErrors(path string, err error, stderr io.Writer) error {
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintf(stderr, "%s: %d problem(s)\n", path, len(list))
		return errReported
	}
	return err
}
