package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfiling writes a CPU profile to $OVERLAY_NODE_CPUPROFILE while the
// node runs, for datapath work (see docs/datapath.md). The returned
// function stops it.
func startProfiling() (stop func(), err error) {
	path := os.Getenv("OVERLAY_NODE_CPUPROFILE")
	if path == "" {
		return func() {}, nil
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
	}, nil
}
