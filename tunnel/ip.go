package tunnel

import "github.com/overlay-node/overlay-node/packet"

// The fixed IP header sizes the offload code (gso.go) checks against; inner
// packets are parsed by the packet package.
const (
	ipv4HeaderLen = packet.IPv4HeaderLen
	ipv6HeaderLen = packet.IPv6HeaderLen
)
