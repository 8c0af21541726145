package nstest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The live registry holds the teardown of everything not yet cleaned up, so
// that the watchdog can run it if the test binary is about to time out. Each
// teardown runs at most once, whichever of t.Cleanup and the watchdog gets there
// first.
var live struct {
	mu   sync.Mutex
	next int
	fns  map[int]func() // nil until first use, which also arms the watchdog
}

// binStart approximates when the testing package armed its -timeout alarm. It
// is taken a little earlier, which only makes the watchdog more conservative.
var binStart = time.Now()

// watchdogMargin is how long before the -timeout panic the watchdog tears down.
const watchdogMargin = 3 * time.Second

// track arranges for teardown to run in t's cleanup, or earlier from the
// watchdog. teardown must not use t: the test may be gone by then.
func track(t testing.TB, teardown func()) {
	var once sync.Once
	run := func() { once.Do(teardown) }

	live.mu.Lock()
	if live.fns == nil {
		live.fns = make(map[int]func())
		armWatchdog()
	}
	id := live.next
	live.next++
	live.fns[id] = run
	live.mu.Unlock()

	t.Cleanup(func() {
		live.mu.Lock()
		delete(live.fns, id)
		live.mu.Unlock()
		run()
	})
}

// armWatchdog starts a timer that fires watchdogMargin before the test binary's
// -timeout would panic. A panicking test binary runs no t.Cleanup, so without
// it every namespace would outlive the run. live.mu must be held.
func armWatchdog() {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return
	}
	timeout, ok := f.Value.(flag.Getter).Get().(time.Duration)
	if !ok || timeout <= 0 {
		return
	}
	time.AfterFunc(time.Until(binStart.Add(timeout-watchdogMargin)), teardownAll)
}

// teardownAll runs every pending teardown, newest first, as t.Cleanup would.
func teardownAll() {
	live.mu.Lock()
	ids := make([]int, 0, len(live.fns))
	for id := range live.fns {
		ids = append(ids, id)
	}
	fns := live.fns
	live.fns = make(map[int]func())
	live.mu.Unlock()

	fmt.Fprintf(os.Stderr, "nstest: test binary is about to time out; running %d pending cleanups\n", len(ids))
	slices.Sort(ids)
	for _, id := range slices.Backward(ids) {
		fns[id]()
	}
}

var sweepOnce sync.Once

// sweep deletes the namespaces and build directories of test binaries that
// died without cleaning up: those named for a PID that no longer runs, and
// those named for this PID, which can only be a previous owner's since this
// runs before anything is created.
func sweep() {
	sweepOnce.Do(func() {
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			name, _, _ := strings.Cut(line, " ") // "NAME (id: N)"
			if stale(name) {
				exec.Command("ip", "netns", "delete", name).Run()
			}
		}
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), namePrefix+"*"))
		for _, dir := range dirs {
			if stale(filepath.Base(dir)) {
				os.RemoveAll(dir)
			}
		}
	})
}

// stale reports whether name is nst-PID-… for a PID that is this process or
// is not running.
func stale(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return false
	}
	field, _, _ := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(field)
	if err != nil || pid <= 0 {
		return false
	}
	return pid == os.Getpid() || errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
