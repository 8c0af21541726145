package tunnel

import "golang.zx2c4.com/wireguard/tun"

// tunWriter writes a batch of opened packets (each with HeaderRoom in
// front) to the TUN device. With the device's virtio-net header on it
// coalesces them itself (gro.go) and writes the file directly; otherwise,
// and for the in-memory TUN of tests, it leaves that to tun.Device.Write.
type tunWriter struct {
	dev  tun.Device
	vnet vnetTUN // file nil: use dev.Write
	gro  groBatch
}

func newTUNWriter(dev tun.Device, vnet vnetTUN) *tunWriter {
	return &tunWriter{dev: dev, vnet: vnet, gro: groBatch{udp: vnet.uso}}
}

func (w *tunWriter) write(pkts [][]byte) error {
	if w.vnet.file == nil {
		_, err := w.dev.Write(pkts, HeaderRoom)
		return err
	}
	w.gro.coalesce(pkts)
	var first error
	for i, buf := range w.gro.out {
		frame := buf[HeaderRoom-virtioHdrLen:]
		putVirtioHdr(frame, w.gro.hdrs[i])
		if _, err := w.vnet.file.Write(frame); err != nil && first == nil {
			first = err
		}
	}
	return first
}
