package tundev

// writer writes a batch of packets (each with HeaderRoom in front) to a
// Framed device: it coalesces them (gro.go) and writes each resulting
// packet or super-packet as one frame.
type writer struct {
	dev Framed
	gro groBatch
}

func newWriter(dev Framed) *writer {
	return &writer{dev: dev, gro: groBatch{udp: dev.UDPGSO()}}
}

func (w *writer) write(pkts [][]byte) error {
	w.gro.coalesce(pkts)
	var first error
	for i, buf := range w.gro.out {
		frame := buf[HeaderRoom-virtioHdrLen:]
		putVirtioHdr(frame, w.gro.hdrs[i])
		if err := w.dev.WriteFrame(frame); err != nil && first == nil {
			first = err
		}
	}
	return first
}
