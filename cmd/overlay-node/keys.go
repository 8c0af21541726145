package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/overlay-node/overlay-node/crypto"
)

func cmdGenkey(args []string, stdout io.Writer) error {
	c := newCommand("genkey", "genkey", stdout)
	if err := c.parse(args); err != nil {
		return err
	}
	k, err := crypto.GeneratePrivateKey()
	if err != nil {
		return fmt.Errorf("generate key: %w", err)
	}
	_, err = fmt.Fprintln(stdout, k.Base64())
	return err
}

func cmdPubkey(args []string, stdin io.Reader, stdout io.Writer) error {
	c := newCommand("pubkey", "pubkey < private.key", stdout)
	if err := c.parse(args); err != nil {
		return err
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 1024)).ReadString('\n')
	if err != nil && err != io.EOF {
		return fmt.Errorf("read private key from stdin: %w", err)
	}
	k, err := crypto.ParsePrivateKey(strings.TrimSpace(line))
	if err != nil {
		return fmt.Errorf("stdin: %w (hint: pipe in a key made by 'overlay-node genkey')", err)
	}
	_, err = fmt.Fprintln(stdout, k.PublicKey())
	return err
}

// readKeyFile loads a private key, refusing files that group or others
// can read: a leaked node key lets anyone impersonate the node.
func readKeyFile(path string) (crypto.PrivateKey, error) {
	var zero crypto.PrivateKey
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return zero, fmt.Errorf("key file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return zero, fmt.Errorf("key file %s: mode %04o lets group or others read it (hint: chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return zero, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err := crypto.ParsePrivateKey(strings.TrimSpace(string(b)))
	if err != nil {
		return zero, fmt.Errorf("key file %s: %w (hint: create one with 'overlay-node genkey > %s; chmod 600 %s')", path, err, path, path)
	}
	return k, nil
}

func cmdVersion(args []string, stdout io.Writer) error {
	c := newCommand("version", "version", stdout)
	if err := c.parse(args); err != nil {
		return err
	}
	rev, date := buildInfo()
	_, err := fmt.Fprintf(stdout, "overlay-node %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n",
		version, rev, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

// buildInfo returns the commit and build date set at link time, or else
// the VCS revision and commit time the go command stamped; "unknown" when
// neither is there.
func buildInfo() (rev, date string) {
	rev, date = commit, buildDate
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && rev == "":
				rev = s.Value
			case s.Key == "vcs.time" && date == "":
				date = s.Value + " (commit time)"
			case s.Key == "vcs.modified" && s.Value == "true" && commit == "" && rev != "":
				rev += "-dirty"
			}
		}
	}
	if rev == "" {
		rev = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return rev, date
}
