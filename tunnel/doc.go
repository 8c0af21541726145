// Package tunnel is the overlay-node engine: it owns the peers and their
// session state, the WireGuard timers, the send pipeline (TUN to UDP, see
// inside.go) and the receive pipeline (UDP to TUN, see outside.go), and the
// counters that describe what happened to every packet. It reads and
// writes the TUN device in batches through package tundev, which does the
// device's offloads, and the UDP socket through package encap.
// docs/datapath.md walks through the whole path.
//
// The engine knows nothing about the mesh file or Prometheus: cmd translates
// config into a Config, and collectors read Device.Snapshot at scrape time.
package tunnel
