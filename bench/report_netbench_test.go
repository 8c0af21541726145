//go:build netbench

package bench_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"
)

// resultsFile is where a successful run writes its report, relative to the
// package directory that go test runs in.
const resultsFile = "RESULTS.md"

// runInfo is the context a reader needs to reproduce or compare a run.
type runInfo struct {
	date     time.Time
	command  string
	commit   string
	goVer    string
	machine  string
	settings settings
	runtime  time.Duration
	// others is how many cores other processes kept busy, on average, during
	// the run: work that shared the machine shows up here and in the ranges.
	others string
}

// newRunInfo describes this machine, checkout and invocation; cpu0 is the
// snapshot taken when the measurements started.
func newRunInfo(s settings, started time.Time, cpu0 cpuSnapshot) runInfo {
	others := "unknown"
	if cpu, err := takeCPUSnapshot(); err == nil && !cpu0.at.IsZero() {
		others = fmt.Sprintf("%.2f of %d cores on average", cpu.otherCores(cpu0), runtime.NumCPU())
	}
	return runInfo{
		others:   others,
		date:     started.UTC(),
		command:  commandLine(s),
		commit:   gitCommit(),
		goVer:    runtime.Version(),
		machine:  machine(),
		settings: s,
		runtime:  time.Since(started).Round(time.Second),
	}
}

// commandLine is the go test invocation that reproduces this run, and the
// make target that ran it if BENCH_VIA names one.
func commandLine(s settings) string {
	timeout := "10m" // go test's default
	if f := flag.Lookup("test.timeout"); f != nil {
		timeout = f.Value.String()
	}
	cmd := fmt.Sprintf("BENCH_ROUNDS=%d BENCH_SECONDS=%d BENCH_PEERS=%d go test -tags netbench -run '^TestSideBySide$' -v -count=1 -timeout %s ./bench/",
		s.rounds, s.seconds, s.peers, timeout)
	if via := os.Getenv("BENCH_VIA"); via != "" {
		return fmt.Sprintf("`%s`, which ran `%s`", via, cmd)
	}
	return "`" + cmd + "`"
}

// gitCommit is the short hash of HEAD, with -dirty and the changed paths if
// the work tree differs: the binaries are built from the work tree, so
// uncommitted changes are part of what was measured.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	commit := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=normal").Output()
	if err != nil {
		return commit + "-dirty?"
	}
	var paths []string
	for line := range strings.Lines(string(st)) {
		if len(line) > 3 {
			paths = append(paths, "`"+strings.TrimSpace(line[3:])+"`")
		}
	}
	if len(paths) == 0 {
		return commit
	}
	const show = 20
	more := ""
	if len(paths) > show {
		more = fmt.Sprintf(" and %d more", len(paths)-show)
		paths = paths[:show]
	}
	return fmt.Sprintf("%s-dirty (uncommitted: %s%s)", commit, strings.Join(paths, ", "), more)
}

// machine is "nproc N, CPU model, kernel RELEASE".
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown"
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("nproc %d, %s, kernel %s", runtime.NumCPU(), model, kernel)
}

// markdown renders the whole report.
func (r *results) markdown(info runInfo) string {
	var b strings.Builder
	s := info.settings
	fmt.Fprintf(&b, "# Benchmark results\n\n")
	fmt.Fprintf(&b, "overlay-node against wireguard-go and Nebula %s (at its defaults, and tuned\n"+
		"with its documented socket buffer and TUN queue settings), one pair at a time,\n"+
		"between two network namespaces joined by one veth pair. Rounds alternate\n"+
		"overlay-node, wireguard-go, nebula, nebula-tuned, then overlay-node with\n"+
		"100 firewall rules and 10,000 tracked flows, whose row and the DNS rows\n"+
		"are overlay-node's alone (—). Cells are the median\n"+
		"[min–max] over the rounds; each ratio is overlay-node's median over the\n"+
		"other's, except in the \"lowest ratio of a round\" row, where it is the\n"+
		"lowest of the rounds' own ratios. Targets are against wireguard-go. How each\n"+
		"row is measured: [README.md](README.md).\n\n", nebulaVersion)
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"date", info.date.Format("2006-01-02 15:04 MST")},
		{"command", info.command},
		{"commit", info.commit},
		{"Go", info.goVer},
		{"machine", info.machine},
		{"settings", fmt.Sprintf("BENCH_ROUNDS=%d, BENCH_SECONDS=%d (per iperf3 run), BENCH_PEERS=%d (nodes in the scale mesh)", s.rounds, s.seconds, s.peers)},
		{"runtime", info.runtime.String() + " (this test, after building the binaries; the in-process benchmarks run before it)"},
		{"other load", "CPU used by processes outside this run during it: " + info.others},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}

	fmt.Fprintf(&b, "\n## Side by side\n\n")
	b.WriteString(r.table(mainRows(s.peers)))
	fmt.Fprintf(&b, "\nThe start and idle-memory rows (the scale test) compare overlay-node with\n"+
		"wireguard-go only (—): Nebula keeps no list of peers to load (any host with a\n"+
		"certificate from the CA may connect, and lighthouses say where hosts are), so\n"+
		"a mesh of idle peers has no counterpart in it.\n")
	fmt.Fprintf(&b, "\n## Offloads during the single-stream run\n\n")
	b.WriteString(r.table(offloadRows))
	b.WriteString("\n")
	for _, line := range r.offloadNotes() {
		fmt.Fprintf(&b, "- %s\n", line)
	}
	if len(r.notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes\n\n")
		for _, line := range r.notes {
			fmt.Fprintf(&b, "- %s\n", line)
		}
	}
	if log := engineLog(); log != "" {
		fmt.Fprintf(&b, "\n## In-process engine and package benchmarks\n\n"+
			"From the same `make bench`, before the side-by-side run.\n\n```\n%s```\n", log)
	}
	return b.String()
}

// table renders rows as a Markdown table whose columns are padded to line
// up, so that the same text reads well on a terminal.
func (r *results) table(rows []metric) string {
	cells := [][]string{header()}
	for _, m := range rows {
		cells = append(cells, r.row(m))
	}
	width := make([]int, len(cells[0]))
	for _, row := range cells {
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	line := func(row []string) {
		for i, c := range row {
			fmt.Fprintf(&b, "| %s%s ", c, strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)))
		}
		b.WriteString("|\n")
	}
	line(cells[0])
	sep := make([]string, len(width))
	for i, w := range width {
		sep[i] = strings.Repeat("-", w)
	}
	line(sep)
	for _, row := range cells[1:] {
		line(row)
	}
	return b.String()
}

// engineLog returns the benchmark lines of the file BENCH_ENGINE_LOG names,
// the output of the in-process benchmarks that `make bench` ran first, or ""
// if there is none.
func engineLog() string {
	path := os.Getenv("BENCH_ENGINE_LOG")
	if path == "" {
		return ""
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var b strings.Builder
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") || strings.HasPrefix(line, "cpu:") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// writeReport writes the report to resultsFile.
func writeReport(text string) error {
	return os.WriteFile(resultsFile, []byte(text), 0o644)
}
