package tunneltest

import "github.com/overlay-node/overlay-node/tundev/tundevtest"

// TUN is the engine's in-memory TUN device: tundevtest's, which speaks
// the virtio-net header, so the engine's TUN driver reads, splits and
// coalesces over it exactly as over the Linux TUN file.
type TUN = tundevtest.TUN

// NewTUN returns a TUN with the given MTU and batch size, with the
// offloads of a Linux TUN before 6.2: TCP segmentation both ways, no UDP
// GSO, so UDP packets are written one per frame and tests see them as
// they were sent. Tests of UDP coalescing build a tundevtest.TUN with
// Config.UDPGSO.
func NewTUN(mtu, batch int) *TUN {
	return tundevtest.NewTUN(tundevtest.Config{MTU: mtu, Batch: batch})
}
