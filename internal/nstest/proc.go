package nstest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrRunning is returned by [Proc.Wait] when the process is still running at
// the timeout.
var ErrRunning = errors.New("process still running")

// stopGrace is how long a process has to exit after SIGTERM before SIGKILL.
// wireguard-go and overlay-node tear down their devices and sockets on SIGTERM.
const stopGrace = 3 * time.Second

// pipeGrace is how long output is still collected after the process exits.
const pipeGrace = time.Second

// A Proc is a long-running process started in a namespace by [Host.Start].
type Proc struct {
	// Immutable.
	Name string    // the command, for messages
	Cmd  *exec.Cmd // ip netns exec NS name args…; its Process is the command itself

	out  syncBuffer    // stdout and stderr, interleaved
	done chan struct{} // closed once the process has been reaped
	err  error         // the exit status; written before done is closed
}

// Start starts the command name with args inside h's namespace, with stdout
// and stderr captured for [Proc.Output]. t's cleanup stops it (SIGTERM, then
// SIGKILL after a grace period), reaps it, and logs its output if t failed.
// The process also gets SIGKILL if the test binary dies.
func (h *Host) Start(t testing.TB, name string, args ...string) *Proc {
	t.Helper()
	return h.StartEnv(t, nil, name, args...)
}

// StartEnv is Start with env ("KEY=value") added to the test's environment.
func (h *Host) StartEnv(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	// ip netns exec execs the command in place, so the PID we get is the
	// command's own.
	p := &Proc{
		Name: name,
		Cmd:  exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...),
		done: make(chan struct{}),
	}
	if env != nil {
		p.Cmd.Env = append(os.Environ(), env...)
	}
	p.Cmd.Stdout = &p.out
	p.Cmd.Stderr = &p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Children that outlive the process hold its output pipe open; don't wait
	// for them. They die with the namespace.
	p.Cmd.WaitDelay = pipeGrace
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("nstest: start %s in %s: %v", name, h.Name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		// After the teardown below, which track registers later and so runs
		// first, the output is complete.
		if t.Failed() {
			out := p.Output()
			if out == "" {
				out = "(none)"
			}
			t.Logf("%s (pid %d) in %s, %v; output:\n%s", name, p.PID(), h.Name, p.state(), out)
		}
	})
	track(t, p.stop)
	return p
}

// PID returns the process ID.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process. It returns os.ErrProcessDone if the process
// has already been reaped.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit, and returns its exit
// status as exec.Cmd.Wait does, or ErrRunning.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	if timeout <= 0 {
		return ErrRunning
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return ErrRunning
	}
}

// Output returns what the process has written to stdout and stderr so far.
func (p *Proc) Output() string { return p.out.String() }

// stop ends the process, politely first, and reaps it.
func (p *Proc) stop() {
	if p.Wait(0) != ErrRunning {
		return
	}
	p.Signal(syscall.SIGTERM)
	if p.Wait(stopGrace) == ErrRunning {
		p.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// state describes how the process ended, for the failure log.
func (p *Proc) state() string {
	switch err := p.Wait(0); err {
	case ErrRunning:
		return "still running"
	case nil:
		return "exit status 0"
	default:
		return err.Error()
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of stdout and
// stderr and reads from the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
