package encap

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux bind: one IPv4 and one IPv6 UDP socket on the same port, read
// with recvmmsg and UDP GRO, written with sendmmsg and UDP GSO, through the
// Go netpoller. Every per-call structure (message headers, iovecs, control
// buffers, addresses) is built once per socket or pooled, so a batch in
// either direction allocates nothing.

// socketBufferSize is asked of SO_RCVBUF and SO_SNDBUF, and forced past
// net.core.[rw]mem_max where the process has CAP_NET_ADMIN (the daemon has,
// for its TUN device): a GRO train is up to 64 KiB, and a burst of them must
// not overflow the socket while the engine opens the previous batch.
const socketBufferSize = 7 << 20

// maxGSOBytes is the most payload one GSO train carries: the largest UDP
// payload that fits one IPv6 packet, which also fits IPv4.
const maxGSOBytes = 1<<16 - 1 - 8 - 40

// NewBind returns the kernel-backed bind.
func NewBind() Bind { return &linuxBind{} }

type linuxBind struct {
	mu     sync.Mutex                // serialises Open and Close
	v4, v6 atomic.Pointer[udpSocket] // nil while closed, or when the host lacks the family; Send reads them lock-free
}

type udpSocket struct {
	conn *net.UDPConn
	raw  syscall.RawConn
	v6   bool
	gso  atomic.Bool // the kernel took UDP_SEGMENT; cleared when a send fails with EIO
	gro  bool
	// narrow holds the destinations a GSO train could not reach whole
	// (see sendTo). It is replaced, never changed, so Send reads it
	// without a lock; narrowMu orders the replacements.
	narrow   atomic.Pointer[map[netip.AddrPort]narrowPath]
	narrowMu sync.Mutex
	recv     receiveScratch // owned by the socket's one receiving goroutine
	send     sync.Pool      // of *sendScratch, so concurrent senders never share
}

func (b *linuxBind) BatchSize() int { return BatchSize }

func (b *linuxBind) Open(port uint16) ([]ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.v4.Load() != nil || b.v6.Load() != nil {
		return nil, 0, errors.New("encap: bind already open")
	}
	// With port 0 the IPv6 socket must take the port the kernel gave the
	// IPv4 one, which another process may hold for IPv6: retry a few times.
	var err error
	for range 100 {
		var v4, v6 *udpSocket
		var actual uint16
		v4, actual, err = listen("udp4", port)
		if err != nil && !errors.Is(err, syscall.EAFNOSUPPORT) {
			return nil, 0, err
		}
		if v4 == nil {
			actual = port // no IPv4 on this host: IPv6 takes the port asked for
		}
		v6, actual6, err6 := listen("udp6", actual)
		if err6 != nil && !errors.Is(err6, syscall.EAFNOSUPPORT) {
			if v4 != nil {
				v4.conn.Close()
			}
			if port == 0 && errors.Is(err6, syscall.EADDRINUSE) {
				err = err6
				continue
			}
			return nil, 0, err6
		}
		if v4 == nil && v6 == nil {
			return nil, 0, errors.Join(err, err6)
		}
		if v4 == nil {
			actual = actual6
		}
		b.v4.Store(v4)
		b.v6.Store(v6)
		var fns []ReceiveFunc
		for _, s := range []*udpSocket{v4, v6} {
			if s != nil {
				fns = append(fns, s.receive)
			}
		}
		return fns, actual, nil
	}
	return nil, 0, err
}

func (b *linuxBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, s := range []*udpSocket{b.v4.Swap(nil), b.v6.Swap(nil)} {
		if s != nil {
			errs = append(errs, s.conn.Close())
		}
	}
	return errors.Join(errs...)
}

func (b *linuxBind) Send(pkts [][]byte, to netip.AddrPort) error {
	s, missing := b.v4.Load(), ErrNoIPv4
	if to.Addr().Is6() && !to.Addr().Is4In6() {
		s, missing = b.v6.Load(), ErrNoIPv6
	}
	if s == nil {
		return missing
	}
	return s.sendTo(pkts, to)
}

// listen opens one socket of network ("udp4" or "udp6"; Go makes the latter
// IPv6-only) and sets its buffers and offloads.
func listen(network string, port uint16) (*udpSocket, uint16, error) {
	s := &udpSocket{v6: network == "udp6"}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			for _, opt := range [][2]int{
				{unix.SO_RCVBUF, socketBufferSize}, {unix.SO_SNDBUF, socketBufferSize},
				{unix.SO_RCVBUFFORCE, socketBufferSize}, {unix.SO_SNDBUFFORCE, socketBufferSize},
			} {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt[0], opt[1]) // best effort, see socketBufferSize
			}
			_, err := unix.GetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT)
			s.gso.Store(err == nil)
			s.gro = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1) == nil
			if !s.v6 {
				// Clear the don't-fragment bit, as kernel WireGuard does: a
				// datagram larger than the path is fragmented (here or by a
				// router) rather than dropped, so a path narrower than the
				// mesh MTU plus our overhead works without ICMP reaching us
				// (docs/datapath.md, "Path MTU"). IPv6 always fragments at
				// the source, at the path MTU the kernel learned.
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT)
			}
		})
	}}
	addr := netip.AddrPortFrom(netip.IPv4Unspecified(), port)
	if s.v6 {
		addr = netip.AddrPortFrom(netip.IPv6Unspecified(), port)
	}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, 0, err
	}
	s.conn = pc.(*net.UDPConn)
	if s.raw, err = s.conn.SyscallConn(); err != nil {
		s.conn.Close()
		return nil, 0, err
	}
	s.recv.init(s)
	s.send.New = func() any { return newSendScratch(s) }
	return s, uint16(s.conn.LocalAddr().(*net.UDPAddr).Port), nil
}

// mmsghdr is struct mmsghdr; Go's layout rules give it the C padding.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// groControlSize fits the one control message a read asks for (UDP_GRO,
// an int) with room for the kernel's alignment.
var groControlSize = unix.CmsgSpace(4)

// receiveScratch is the state of one recvmmsg call, reused for every call.
type receiveScratch struct {
	hdrs  [BatchSize]mmsghdr
	iovs  [BatchSize]unix.Iovec
	names [BatchSize]unix.RawSockaddrInet6 // big enough for either family
	ctrl  []byte                           // BatchSize control buffers
	want  int                              // messages asked for
	got   int
	err   error
	read  func(fd uintptr) bool // s.readOnce, bound once so a call allocates nothing
}

func (r *receiveScratch) init(s *udpSocket) {
	r.ctrl = make([]byte, BatchSize*groControlSize)
	for i := range r.hdrs {
		h := &r.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		if s.gro {
			h.Control = &r.ctrl[i*groControlSize]
		}
	}
	r.read = r.readOnce
}

// readOnce and writeOnce make raw system calls, which Go's scheduler does
// not see: the socket is non-blocking, so they cannot block, and skipping
// the scheduler's system-call entry keeps an idle node's first packet from
// waking Go's sysmon thread (tundev's rawCall says more).
func (r *receiveScratch) readOnce(fd uintptr) bool {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(r.want), 0, 0, 0)
	if errno == unix.EAGAIN {
		return false
	}
	r.got, r.err = int(n), nil
	if errno != 0 {
		r.got, r.err = 0, errno
	}
	return true
}

// receive is the socket's ReceiveFunc. Only one goroutine may call it.
func (s *udpSocket) receive(msgs []Message) (int, error) {
	r := &s.recv
	r.want = min(len(msgs), BatchSize)
	for i := 0; i < r.want; i++ {
		buf := msgs[i].Buf[:cap(msgs[i].Buf)]
		r.iovs[i].Base = unsafe.SliceData(buf)
		r.iovs[i].SetLen(len(buf))
		h := &r.hdrs[i].hdr
		h.Namelen = unix.SizeofSockaddrInet6
		if s.gro {
			h.SetControllen(groControlSize)
		}
	}
	if err := s.raw.Read(r.read); err != nil {
		return 0, err
	}
	if r.err != nil {
		return 0, r.err
	}
	for i := 0; i < r.got; i++ {
		m, h := &msgs[i], &r.hdrs[i]
		m.Buf = m.Buf[:h.n]
		m.From = sockaddrToAddrPort(&r.names[i])
		m.Seg = 0
		if s.gro {
			m.Seg = groSegment(r.ctrl[i*groControlSize : i*groControlSize+int(h.hdr.Controllen)])
		}
		if h.hdr.Flags&unix.MSG_TRUNC != 0 {
			m.Buf = m.Buf[:0] // cannot happen with MaxSegmentSize buffers; never pass on a part
		}
	}
	return r.got, nil
}

// groSegment returns the segment size of a GRO train from a read's control
// messages, or 0 when the read was a single datagram.
func groSegment(ctrl []byte) int {
	for len(ctrl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(ctrl) {
			return 0
		}
		data := ctrl[unix.CmsgLen(0):h.Len]
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 2 {
			return int(*(*uint16)(unsafe.Pointer(&data[0]))) // an int in host order; gso_size fits 16 bits
		}
		next := unix.CmsgSpace(int(h.Len) - unix.CmsgLen(0))
		if next > len(ctrl) {
			return 0
		}
		ctrl = ctrl[next:]
	}
	return 0
}

func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// sendScratch is the state of one Send: a header per GSO train, an iovec
// per datagram, so a train is gathered from the engine's buffers in place.
type sendScratch struct {
	s    *udpSocket
	hdrs [BatchSize]mmsghdr
	iovs [BatchSize]unix.Iovec
	ctrl []byte
	name unix.RawSockaddrInet6
	todo []mmsghdr // the headers not yet sent
	err  error
	send func(fd uintptr) bool // sc.writeOnce, bound once
}

var gsoControlSize = unix.CmsgSpace(2)

func newSendScratch(s *udpSocket) *sendScratch {
	sc := &sendScratch{s: s, ctrl: make([]byte, BatchSize*gsoControlSize)}
	for i := range sc.hdrs {
		h := &sc.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&sc.name))
		c := (*unix.Cmsghdr)(unsafe.Pointer(&sc.ctrl[i*gsoControlSize]))
		c.Level, c.Type = unix.SOL_UDP, unix.UDP_SEGMENT
		c.SetLen(unix.CmsgLen(2))
	}
	sc.send = sc.writeOnce
	return sc
}

func (sc *sendScratch) writeOnce(fd uintptr) bool {
	for len(sc.todo) > 0 {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&sc.todo[0])), uintptr(len(sc.todo)), 0, 0, 0)
		if errno == unix.EAGAIN {
			return false
		}
		if errno != 0 {
			sc.err = errno
			return true
		}
		sc.todo = sc.todo[n:]
	}
	return true
}

// setAddr writes to into the scratch's one sockaddr, shared by every header.
func (sc *sendScratch) setAddr(to netip.AddrPort) uint32 {
	sc.name = unix.RawSockaddrInet6{}
	port := ntohs(to.Port()) // the swap is its own inverse
	if !sc.s.v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sc.name))
		sa4.Family, sa4.Port, sa4.Addr = unix.AF_INET, port, to.Addr().Unmap().As4()
		return unix.SizeofSockaddrInet4
	}
	sc.name.Family, sc.name.Port, sc.name.Addr = unix.AF_INET6, port, to.Addr().As16()
	return unix.SizeofSockaddrInet6
}

// build lays pkts out as messages: each run of equal-size datagrams (the
// last may be shorter) smaller than gsoBelow becomes one train; 0 sends
// every datagram alone.
func (sc *sendScratch) build(pkts [][]byte, namelen uint32, gsoBelow int) {
	nh := 0
	for i := 0; i < len(pkts); {
		size := len(pkts[i])
		j, total := i+1, size
		for size < gsoBelow && j < len(pkts) && j-i < MaxGSOSegments && len(pkts[j]) <= size && total+len(pkts[j]) <= maxGSOBytes {
			total += len(pkts[j])
			j++
			if len(pkts[j-1]) < size {
				break
			}
		}
		for k := i; k < j; k++ {
			sc.iovs[k].Base = unsafe.SliceData(pkts[k])
			sc.iovs[k].SetLen(len(pkts[k]))
		}
		h := &sc.hdrs[nh].hdr
		h.Namelen = namelen
		h.Iov = &sc.iovs[i]
		h.SetIovlen(j - i)
		h.Control, h.Controllen = nil, 0
		if j-i > 1 {
			ctrl := sc.ctrl[nh*gsoControlSize:]
			*(*uint16)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)])) = uint16(size)
			h.Control = &ctrl[0]
			h.SetControllen(gsoControlSize)
		}
		nh++
		i = j
	}
	sc.todo = sc.hdrs[:nh]
}

// sentPackets counts the datagrams in the headers already sent.
func (sc *sendScratch) sentPackets() int {
	n := 0
	for i := range len(sc.hdrs) - cap(sc.todo) {
		n += int(sc.hdrs[i].hdr.Iovlen)
	}
	return n
}

func (s *udpSocket) sendTo(pkts [][]byte, to netip.AddrPort) error {
	if len(pkts) > BatchSize {
		return errors.New("encap: send batch larger than BatchSize")
	}
	sc := s.send.Get().(*sendScratch)
	defer s.send.Put(sc)
	namelen := sc.setAddr(to)
	gsoBelow := 0
	if s.gso.Load() {
		gsoBelow = s.gsoLimit(to)
	}
	sc.build(pkts, namelen, gsoBelow)
	sc.err = nil
	if err := s.raw.Write(sc.send); err != nil {
		return err
	}
	if gsoBelow == 0 || sc.err == nil {
		return sc.err
	}
	failed := sc.todo[0].hdr.Iovlen > 1 // a train, not a single datagram
	rest := pkts[sc.sentPackets():]
	switch {
	case errors.Is(sc.err, unix.EIO):
		// The route's device cannot checksum a GSO train (some virtual
		// NICs): send datagram by datagram from now on, starting with the
		// train that failed.
		s.gso.Store(false)
		gsoBelow = 0
	case failed && (errors.Is(sc.err, unix.EMSGSIZE) || errors.Is(sc.err, unix.EINVAL)):
		// The train's segments are larger than the path MTU to this
		// destination. The kernel fragments a single datagram but not the
		// segments of a train, so datagrams this large go alone to this
		// destination for a while.
		gsoBelow = len(rest[0])
		s.setNarrow(to, gsoBelow)
	default:
		return sc.err
	}
	sc.build(rest, namelen, gsoBelow)
	sc.err = nil
	if err := s.raw.Write(sc.send); err != nil {
		return err
	}
	return sc.err
}

// A narrowPath is a destination whose path MTU is below a GSO train's
// segments: datagrams of at least seg bytes go to it alone until the
// system clock (Unix nanoseconds) passes until.
type narrowPath struct {
	seg   int
	until int64
}

// Bounds of the narrow-path memory: an entry is forgotten after
// narrowPathLifetime, as the kernel forgets a learned path MTU
// (net.ipv4.route.mtu_expires), so a path that widens gets GSO back; and
// the memory starts afresh past maxNarrowPaths destinations.
const (
	narrowPathLifetime = 10 * time.Minute
	maxNarrowPaths     = 4096
)

// gsoLimit returns the datagram size from which sends to to go without
// GSO: maxGSOBytes+1 (always GSO) unless to is a narrow path.
func (s *udpSocket) gsoLimit(to netip.AddrPort) int {
	if m := s.narrow.Load(); m != nil {
		if np, ok := (*m)[to]; ok && time.Now().UnixNano() < np.until {
			return np.seg
		}
	}
	return maxGSOBytes + 1
}

// setNarrow records that trains of seg-byte datagrams do not reach to.
func (s *udpSocket) setNarrow(to netip.AddrPort, seg int) {
	s.narrowMu.Lock()
	defer s.narrowMu.Unlock()
	now := time.Now().UnixNano()
	m := make(map[netip.AddrPort]narrowPath)
	if old := s.narrow.Load(); old != nil && len(*old) < maxNarrowPaths {
		for k, v := range *old {
			if now < v.until {
				m[k] = v
			}
		}
	}
	m[to] = narrowPath{seg: seg, until: now + int64(narrowPathLifetime)}
	s.narrow.Store(&m)
}
