package tundev

import "golang.org/x/sys/unix"

// BatchBuffers returns n buffers of size bytes from one anonymous mapping,
// outside the Go heap. The kernel backs a page only once it is written, so
// a batch buffer costs memory for the bytes packets actually use: 64 KiB
// buffers that mostly carry 1,500-byte packets stay mostly unbacked. The
// Go heap would zero them when it reuses memory, making them resident at
// once. free releases the mapping; no buffer may be used afterwards.
func BatchBuffers(n, size int) (bufs [][]byte, free func()) {
	region, err := unix.Mmap(-1, 0, n*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return heapBuffers(n, size)
	}
	bufs = make([][]byte, n)
	for i := range bufs {
		bufs[i] = region[i*size : (i+1)*size : (i+1)*size]
	}
	return bufs, func() { unix.Munmap(region) }
}
