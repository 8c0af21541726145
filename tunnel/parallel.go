package tunnel

import (
	"runtime"
	"sync"

	"github.com/overlay-node/overlay-node/encap"
)

// rangeTask is work over a batch that can be split into index ranges and
// done in any order. Implementations are long-lived per-goroutine scratch,
// so handing one to the pool allocates nothing.
type rangeTask interface {
	doRange(lo, hi int)
}

type cryptoJob struct {
	task   rangeTask
	lo, hi int
	wg     *sync.WaitGroup
}

// cryptoPool spreads the crypto of one batch across cores. The caller runs
// the first share itself and waits for the rest, so the batch leaves in the
// order it came in: per-peer order needs no reordering stage.
type cryptoPool struct {
	jobs    chan cryptoJob
	workers int
}

// newCryptoPool starts GOMAXPROCS-1 workers: the goroutine that owns a
// batch does the first share itself. The daemon leaves a core to the kernel
// by lowering GOMAXPROCS (see cmd/overlay-node), so on two cores there are
// no workers: there, handing half a batch to the other core cost more in
// wake-ups than it saved (docs/datapath.md).
func newCryptoPool() *cryptoPool { return newCryptoPoolOf(runtime.GOMAXPROCS(0) - 1) }

func newCryptoPoolOf(workers int) *cryptoPool {
	p := &cryptoPool{workers: workers}
	p.jobs = make(chan cryptoJob, 4*encap.BatchSize)
	for i := 0; i < p.workers; i++ {
		go p.work()
	}
	return p
}

func (p *cryptoPool) work() {
	for j := range p.jobs {
		j.task.doRange(j.lo, j.hi)
		j.wg.Done()
	}
}

// close stops the workers; run must not be called afterwards.
func (p *cryptoPool) close() { close(p.jobs) }

// run does t over [0, n), in parallel when the batch is big enough. wg is
// the caller's scratch.
func (p *cryptoPool) run(t rangeTask, n int, wg *sync.WaitGroup) {
	if p.workers == 0 || n < ParallelMinPackets {
		t.doRange(0, n)
		return
	}
	parts := p.workers + 1
	share := (n + parts - 1) / parts
	for lo := share; lo < n; lo += share {
		wg.Add(1)
		p.jobs <- cryptoJob{task: t, lo: lo, hi: min(lo+share, n), wg: wg}
	}
	t.doRange(0, min(share, n))
	wg.Wait()
}
