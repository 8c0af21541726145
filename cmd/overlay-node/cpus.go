package main

import (
	"os"
	"runtime"
)

// leaveCoreForKernel runs the daemon's goroutines on one core fewer than
// Go would use, unless the operator set GOMAXPROCS. Half of the datapath's
// work is the kernel's (TCP, UDP, TUN, run in our syscalls and in softirq),
// and with as many Ps as cores, Go's idle Ps spin looking for work at every
// wake-up and take cycles from it. Measured through a pair of nodes on two
// cores, iperf3, two runs each: single stream 4.53 and 4.30 Gbit/s with two
// Ps, 4.95 and 4.93 with one; 4 streams 4.78 and 4.55 against 5.17 and 5.09
// (docs/datapath.md).
func leaveCoreForKernel() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)-1))
	}
}
