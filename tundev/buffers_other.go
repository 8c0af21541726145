//go:build !linux

package tundev

// BatchBuffers returns n buffers of size bytes from the Go heap.
func BatchBuffers(n, size int) (bufs [][]byte, free func()) { return heapBuffers(n, size) }
