package main

import (
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// helpOf runs `path -h` and returns its output.
func helpOf(t *testing.T, path []string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", append(slices.Clone(path), "-h")...)
	if code != exitOK || !strings.HasPrefix(out, "usage: overlay-node ") {
		t.Fatalf("%q -h: exit %d, output %q %q", path, code, out, errOut)
	}
	return out
}

// README's command list is every command's usage line, and nothing else,
// so the two cannot drift.
func TestREADMECommands(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(b), "## Commands\n\n```\n")
	block, _, _ = strings.Cut(block, "```")
	var readme []string // the synopsis of each command line
	for _, line := range strings.Split(block, "\n") {
		if syn, ok := strings.CutPrefix(line, "overlay-node "); ok {
			if i := strings.Index(syn, "  "); i >= 0 {
				syn = syn[:i]
			}
			readme = append(readme, strings.TrimSpace(syn))
		}
	}
	var help []string
	for _, p := range commandPaths() {
		first, _, _ := strings.Cut(helpOf(t, p), "\n")
		help = append(help, strings.TrimPrefix(first, "usage: overlay-node "))
	}
	for _, syn := range help {
		if !slices.Contains(readme, syn) {
			t.Errorf("README's command list has no line for %q (from -h)", syn)
		}
	}
	for _, syn := range readme {
		if !slices.Contains(help, syn) {
			t.Errorf("README lists %q, which no command's -h says", syn)
		}
	}
	if len(help) < 10 {
		t.Errorf("found %d commands in the usage text, want every one: %q", len(help), help)
	}
}

// Every flag of every command is listed by -h with its default.
func TestHelpListsFlagsWithDefaults(t *testing.T) {
	for _, p := range commandPaths() {
		lines := strings.Split(helpOf(t, p), "\n")
		for i, line := range lines {
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			if i+1 >= len(lines) || !strings.Contains(lines[i+1], "(default") && !strings.Contains(lines[i+1], "(required)") {
				t.Errorf("%q -h: flag %q has no default:\n%s", p, strings.TrimSpace(line), strings.Join(lines, "\n"))
			}
		}
	}
	if !strings.Contains(helpOf(t, []string{"up"}), "--interface string\n    \tTUN interface name (default: ovl0)") {
		t.Errorf("up -h does not list --interface with its default:\n%s", helpOf(t, []string{"up"}))
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != exitOK || !strings.HasPrefix(out, "overlay-node ") || !containsAll(out, "\ncommit: ", "\nbuilt: ", "\ngo: "+runtime.Version()) {
		t.Errorf("version: exit %d, output %q", code, out)
	}
}

// The bash completion completes commands, subcommands and flags.
func TestCompletionBash(t *testing.T) {
	_, script, _ := runCLI(t, "", "completion", "bash")
	_, zsh, _ := runCLI(t, "", "completion", "zsh")
	if !strings.HasPrefix(zsh, "#compdef overlay-node\n") || !strings.Contains(zsh, script) {
		t.Errorf("zsh script is not the bash one under bashcompinit:\n%s", zsh)
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to run the completion in")
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"doc"}, "doctor"},
		{[]string{"policy", ""}, "why"},
		{[]string{"export", ""}, "wg-quick"},
		{[]string{"up", "--log"}, "--log-format --log-level"},
		{[]string{"doctor", "--j"}, "--json"},
		{[]string{"completion", ""}, "bash zsh"},
	} {
		cmd := exec.Command("bash", "-c", script+`
COMP_WORDS=(overlay-node "$@"); COMP_CWORD=$#; _overlay_node; echo "${COMPREPLY[*]}"`, "bash")
		cmd.Args = append(cmd.Args, tc.words...)
		out, err := cmd.Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("complete %q: got %q (%v), want %q", tc.words, got, err, tc.want)
		}
	}
}
