package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfiling writes a CPU profile to $OVERLAY_NODE_CPUPROFILE while the
// node runs, and a heap profile to $OVERLAY_NODE_MEMPROFILE when it stops,
// for datapath and footprint work (see docs/datapath.md). The returned
// function stops them.
func startProfiling() (stop func(), err error) {
	stopHeap := func() {
		if path := os.Getenv("OVERLAY_NODE_MEMPROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}
	path := os.Getenv("OVERLAY_NODE_CPUPROFILE")
	if path == "" {
		return stopHeap, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		stopHeap()
	}, nil
}
