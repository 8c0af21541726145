// Package tunnel is the overlay-node engine: it owns the peers and their
// session state, the WireGuard timers, the send pipeline (TUN to UDP, see
// inside.go) and the receive pipeline (UDP to TUN, see outside.go), and the
// counters that describe what happened to every packet. On Linux it also
// does the TUN device's offloads itself: it splits the super-packets it
// reads (gso.go) and coalesces the packets it writes (gro.go), behind the
// virtio-net header. docs/datapath.md walks through the whole path.
//
// The engine knows nothing about the mesh file or Prometheus: cmd translates
// config into a Config, and collectors read Device.Snapshot at scrape time.
package tunnel
