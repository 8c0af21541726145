// Package routing owns the mapping between overlay addresses and peers.
//
// It has two halves:
//
//   - Table, the allowed-IPs longest-prefix-match table. The engine consults it
//     for every packet: on the send side to pick the peer that owns a
//     destination address, and on the receive side to check that a decrypted
//     packet's inner source address routes back to the peer it came from.
//   - ConfigureInterface, the kernel side of the overlay interface: its MTU,
//     its addresses, its admin state and the routes that steer overlay traffic
//     into it. It returns an undo function that removes exactly what it added.
//
// The segmentation policy will live here as well.
package routing
