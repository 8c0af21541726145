// Package bench holds overlay-node's benchmark harness. It has no API: all of
// it is test code, in two parts that `make bench` runs one after the other.
//
//   - engine_test.go: in-process benchmarks of the engine. Two tunnel.Device
//     engines talk over an in-memory encaptest pair, with tunneltest TUN fakes
//     on the inside, so the figures are the engine's own cost (crypto, routing,
//     batching) without a kernel. They are Benchmark functions only, so plain
//     `go test` (and `make test`) runs none of them.
//
//   - the files tagged netbench: TestSideBySide, which runs the real
//     overlay-node binary and a real wireguard-go, one pair at a time, between
//     two network namespaces joined by one veth pair, alternating the two
//     implementations round by round, and measures TCP and UDP throughput,
//     added latency, CPU per Gbit and memory; then a 10,000-node mesh, for
//     start-up time and memory per idle peer. It writes the comparison to
//     bench/RESULTS.md. It needs root, so it sits behind the build tag and
//     never runs in `make test`.
//
// README.md in this folder says how to run both and how to read the table.
package bench
