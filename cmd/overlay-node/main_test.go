package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command in process and returns its exit code and output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := [][]string{
		nil,
		{"frobnicate"},
		{"up", "--no-such-flag"},
		{"up", "-c", "mesh.toml"},
		{"check"},
		{"check", "-c", "x", "stray"},
		{"up", "-c", "m", "-k", "k", "--log-level", "loud"},
		{"up", "-c", "m", "-k", "k", "--metrics", "9586"},
		{"genkey", "extra"},
	}
	for _, args := range tests {
		code, _, stderr := runCLI(t, "", args...)
		if code != exitUsage {
			t.Errorf("%q: got exit %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(stderr, "usage: overlay-node") {
			t.Errorf("%q: stderr has no usage line: %q", args, stderr)
		}
		if strings.Contains(stderr, "goroutine ") {
			t.Errorf("%q: stack trace on stderr", args)
		}
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"up", "-h"}, {"check", "-h"}} {
		if code, out, _ := runCLI(t, "", args...); code != exitOK || !strings.Contains(out, "usage:") {
			t.Errorf("%q: got exit %d and %q, want 0 and usage", args, code, out)
		}
	}
}

func TestGenkeyPubkeyRoundTrip(t *testing.T) {
	code, priv, _ := runCLI(t, "", "genkey")
	if code != 0 || len(strings.TrimSpace(priv)) != 44 {
		t.Fatalf("genkey: exit %d, output %q", code, priv)
	}
	code, pub, stderr := runCLI(t, priv, "pubkey")
	if code != 0 || len(strings.TrimSpace(pub)) != 44 {
		t.Fatalf("pubkey: exit %d, output %q, stderr %q", code, pub, stderr)
	}
	// Stock wg agrees, where it is installed.
	if wg, err := exec.LookPath("wg"); err == nil {
		cmd := exec.Command(wg, "pubkey")
		cmd.Stdin = strings.NewReader(priv)
		want, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if pub != string(want) {
			t.Errorf("got public key %q, wg pubkey says %q", pub, want)
		}
	}
	if code, _, stderr := runCLI(t, "not a key\n", "pubkey"); code != exitError || !strings.Contains(stderr, "hint") {
		t.Errorf("bad key: got exit %d, stderr %q; want 1 with a hint", code, stderr)
	}
}

func TestCheckEveryExample(t *testing.T) {
	meshes, err := filepath.Glob("../../examples/*/mesh.toml")
	if err != nil || len(meshes) < 4 {
		t.Fatalf("found %d example meshes (%v), want at least 4", len(meshes), err)
	}
	for _, m := range meshes {
		if code, out, stderr := runCLI(t, "", "check", "-c", m); code != 0 {
			t.Errorf("check %s: exit %d\n%s%s", m, code, out, stderr)
		}
	}
}

func writeFile(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckReportsEveryErrorWithPosition(t *testing.T) {
	dir := t.TempDir()
	mesh := writeFile(t, dir, "mesh.toml", `[mesh]
name = "m"
colour = "blue"

[[node]]
name = "a"
public_key = "not-base64"
address = "10.0.0.1/24"

[[node]]
name = "a"
public_key = "SU+gSG2x7dG12hDJwTxpll6ZjJtIk9u5l2YtlgkWTmM="
address = "10.0.0.300/24"
`, 0o644)
	code, _, stderr := runCLI(t, "", "check", "-c", mesh)
	if code != exitError {
		t.Fatalf("got exit %d, want 1", code)
	}
	for _, want := range []string{mesh + ":3:", mesh + ":7:", mesh + ":11:", mesh + ":13:"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks an error at %s:\n%s", want, stderr)
		}
	}
}

func TestKeyFileChecks(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := runCLI(t, "", "genkey")
	mesh := "../../examples/three-node/mesh.toml"

	loose := writeFile(t, dir, "loose.key", priv, 0o644)
	code, _, stderr := runCLI(t, "", "check", "-c", mesh, "-k", loose)
	if code != exitError || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("group-readable key: got exit %d, stderr %q; want 1 and a chmod hint", code, stderr)
	}
	if strings.Contains(stderr, strings.TrimSpace(priv)) {
		t.Error("the private key was printed")
	}

	tight := writeFile(t, dir, "tight.key", priv, 0o600)
	code, _, stderr = runCLI(t, "", "check", "-c", mesh, "-k", tight)
	if code != exitError || !strings.Contains(stderr, "not in the mesh") {
		t.Errorf("key not in mesh: got exit %d, stderr %q; want 1 naming the problem", code, stderr)
	}
	_, pub, _ := runCLI(t, priv, "pubkey")
	if !strings.Contains(stderr, strings.TrimSpace(pub)) {
		t.Errorf("not-in-mesh error does not name the public key %s: %q", pub, stderr)
	}
	if strings.Contains(stderr, strings.TrimSpace(priv)) {
		t.Error("the private key was printed")
	}
}
