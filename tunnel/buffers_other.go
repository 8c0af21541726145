//go:build !linux

package tunnel

// batchBuffers returns n buffers of size bytes from the Go heap.
func batchBuffers(n, size int) (bufs [][]byte, free func()) { return heapBuffers(n, size) }
