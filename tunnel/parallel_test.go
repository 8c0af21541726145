package tunnel

import (
	"sync"
	"sync/atomic"
	"testing"
)

type markTask struct{ hits []atomic.Int32 }

func (m *markTask) doRange(lo, hi int) {
	for i := lo; i < hi; i++ {
		m.hits[i].Add(1)
	}
}

// Every index of a batch is processed exactly once, whether the batch is
// split across workers or not.
func TestCryptoPoolCoversBatchOnce(t *testing.T) {
	for _, workers := range []int{0, 1, 3} {
		p := newCryptoPoolOf(workers)
		var wg sync.WaitGroup
		for _, n := range []int{0, 1, ParallelMinPackets - 1, ParallelMinPackets, 45, 127, 128} {
			m := &markTask{hits: make([]atomic.Int32, n)}
			p.run(m, n, &wg)
			for i := range m.hits {
				if got := m.hits[i].Load(); got != 1 {
					t.Fatalf("workers %d, batch %d: index %d done %d times, want 1", workers, n, i, got)
				}
			}
		}
		p.close()
	}
}
