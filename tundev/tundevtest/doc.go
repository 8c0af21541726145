// Package tundevtest provides an in-memory TUN device for tests, which
// speaks the virtio-net header of Linux's TUN with offloads on: tests hand
// the driver TSO/USO super-packets and packets with partial checksums,
// and see the frames it writes, coalesced, as the kernel would take them.
// The driver in package tundev runs over it exactly as over the real TUN
// file, so tests exercise the same splitting and coalescing.
package tundevtest
