package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Flags of up and push that do not go together are usage errors, told
// before anything is touched.
func TestSourceFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"up", "-k", "k"}, "one of -c and --etcd"},
		{[]string{"up", "-c", "m", "--etcd", "http://127.0.0.1:2379", "-k", "k"}, "one of -c and --etcd"},
		{[]string{"up", "-c", "m", "-k", "k", "--join", "n"}, "go with --etcd"},
		{[]string{"up", "--etcd", "http://127.0.0.1:2379", "-k", "k", "--watch"}, "--watch goes with -c"},
		{[]string{"up", "--etcd", "http://127.0.0.1:2379", "-k", "k", "--endpoint", "1.2.3.4:5"}, "go with --join"},
		{[]string{"up", "--etcd", "http://127.0.0.1:2379", "-k", "k", "--join", "n", "--endpoint", "host"}, "bad --endpoint"},
		{[]string{"up", "--etcd", "http://127.0.0.1:2379", "-k", "k", "--join", "n", "--lease-ttl", "1s"}, "too short"},
		{[]string{"push", "-c", "m"}, "-c and --etcd are required"},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// push checks the file like check before it talks to etcd: a bad file is
// refused with its position even with no etcd at all.
func TestPushRefusesBadFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "mesh.toml")
	if err := os.WriteFile(bad, []byte("[mesh]\nname = \"x\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "push", "-c", bad, "--etcd", "http://127.0.0.1:1")
	if code != exitError || !strings.Contains(stderr, bad+":3:1: mesh.bogus") {
		t.Errorf("exit %d, stderr %q; want %d and the error at %s:3:1", code, stderr, exitError, bad)
	}
	_, _, checkErr := runCLI(t, "", "check", "-c", bad)
	if checkErr != stderr {
		t.Errorf("push and check report differently:\npush:  %q\ncheck: %q", stderr, checkErr)
	}
}
