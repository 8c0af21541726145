package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

const completionSynopsis = "completion bash|zsh"

// cmdCompletion prints a shell completion script. The commands and flags
// in it are read from the usage text and from each command's -h, so they
// cannot drift from what the commands accept.
func cmdCompletion(args []string, stdout io.Writer) error {
	c := newCommand("completion", completionSynopsis+
		"\n\nbash: source <(overlay-node completion bash)\nzsh:  overlay-node completion zsh > \"${fpath[1]}/_overlay-node\"", stdout)
	if err := c.Parse(args); err != nil {
		return c.parse(args)
	}
	if c.NArg() != 1 || (c.Arg(0) != "bash" && c.Arg(0) != "zsh") {
		return &usageError{msg: "completion: want bash or zsh\nusage: overlay-node " + completionSynopsis}
	}
	script := bashCompletion()
	if c.Arg(0) == "zsh" {
		// zsh runs the bash function through its bashcompinit layer.
		script = "#compdef overlay-node\nautoload -U +X bashcompinit && bashcompinit\n" + script
	}
	_, err := io.WriteString(stdout, script)
	return err
}

// commandPaths lists the commands of the usage text, each as the words
// that name it: ["up"], ["policy", "why"], ["export", "wg-quick"].
func commandPaths() [][]string {
	_, list, _ := strings.Cut(usageText, "commands:\n")
	list, _, _ = strings.Cut(list, "\n\n")
	var paths [][]string
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue // a continuation line
		}
		// The synopsis ends where two spaces start the description.
		syn := strings.TrimSpace(line)
		if i := strings.Index(syn, "  "); i >= 0 {
			syn = syn[:i]
		}
		var path []string
		for _, w := range strings.Fields(syn) {
			if w[0] < 'a' || w[0] > 'z' || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz-") != "" {
				break // a flag, an argument or a choice
			}
			path = append(path, w)
		}
		paths = append(paths, path)
	}
	return paths
}

// flagsOf lists the flags of the command path as its -h prints them.
func flagsOf(path []string) []string {
	var out strings.Builder
	run(append(slices.Clone(path), "-h"), strings.NewReader(""), &out, io.Discard)
	var flags []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(line, "  -") {
			flags = append(flags, f[0])
		}
	}
	return flags
}

// bashCompletion is the bash completion function: commands, then their
// subcommand word, then their flags; file names after -c and -k.
func bashCompletion() string {
	var b strings.Builder
	var names []string
	subs := map[string][]string{}
	flags := map[string][]string{}
	for _, p := range commandPaths() {
		if !slices.Contains(names, p[0]) {
			names = append(names, p[0])
		}
		if len(p) > 1 {
			subs[p[0]] = append(subs[p[0]], p[1])
		}
		flags[p[0]] = append(flags[p[0]], flagsOf(p)...)
	}
	subs["completion"] = []string{"bash", "zsh"}
	b.WriteString("# overlay-node completion for bash; written by overlay-node completion.\n")
	b.WriteString("_overlay_node() {\n")
	b.WriteString("\tlocal cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\" words=\"\"\n")
	fmt.Fprintf(&b, "\tif [[ $COMP_CWORD -eq 1 ]]; then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\t\treturn\n\tfi\n", strings.Join(names, " "))
	b.WriteString("\tcase \"$prev\" in\n\t-c|-k) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n\tesac\n")
	b.WriteString("\tcase \"${COMP_WORDS[1]}\" in\n")
	for _, n := range names {
		fmt.Fprintf(&b, "\t%s)", n)
		if s := subs[n]; len(s) > 0 {
			fmt.Fprintf(&b, " [[ $COMP_CWORD -eq 2 ]] && words=%q || words=%q ;;\n", strings.Join(s, " "), strings.Join(unique(flags[n]), " "))
		} else {
			fmt.Fprintf(&b, " words=%q ;;\n", strings.Join(unique(flags[n]), " "))
		}
	}
	b.WriteString("\tesac\n\tCOMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n}\n")
	b.WriteString("complete -F _overlay_node overlay-node\n")
	return b.String()
}

func unique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}
