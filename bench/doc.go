// Package bench holds overlay-node's side-by-side benchmark against
// wireguard-go and Nebula. It has no API: all of it is test code. `make bench` first
// runs every package's in-process Benchmark functions (among them
// tunnel's BenchmarkEngine: two engines over in-memory fakes, the engine's
// own cost without a kernel), then this package:
//
//   - the files tagged netbench: TestSideBySide, which runs the real
//     overlay-node binary, a real wireguard-go and a real Nebula (at its
//     defaults and tuned), one pair at a time, between two network
//     namespaces joined by one veth pair, alternating the implementations
//     round by round, and measures TCP and UDP throughput, added latency,
//     CPU per Gbit and memory; then a 10,000-node mesh, for start-up time
//     and memory per idle peer against wireguard-go. It writes the comparison to
//     bench/RESULTS.md. It needs root, so it sits behind the build tag and
//     never runs in `make test`.
//
// README.md in this folder says how to run both and how to read the table.
package bench
