package tundev

// heapBuffers returns n buffers of size bytes from the Go heap.
func heapBuffers(n, size int) (bufs [][]byte, free func()) {
	bufs = make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, func() {}
}
