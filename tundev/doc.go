// Package tundev is the TUN side of the datapath: it reads and writes IP
// packets in batches (Device), with room in front of each packet for the
// engine to seal in place. On Linux it does the TUN device's offloads
// itself, behind the virtio-net header: it splits the TSO/USO
// super-packets it reads into packets with their own headers and
// checksums (gso.go), completes partial checksums, and coalesces the
// packets it writes into TCP and UDP super-packets (gro.go).
//
// The offload reader and writer (read.go, write.go) work over Framed, one
// virtio-net frame at a time: the Linux TUN file (frames_linux.go) in
// production and the in-memory TUN of package tundevtest in tests, so
// tests run the same batching, splitting and coalescing. A tun.Device
// without the header (other systems, old kernels) is read and written
// through its own Read and Write instead. Package encap is the UDP side.
package tundev
