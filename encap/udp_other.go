//go:build !linux

package encap

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// NewBind returns a portable bind: one dual-stack socket, one datagram per
// call. The batched, offloaded bind is Linux's (udp_linux.go).
func NewBind() Bind { return &portableBind{} }

type portableBind struct {
	mu   sync.Mutex
	conn *net.UDPConn
}

func (b *portableBind) BatchSize() int { return 1 }

func (b *portableBind) Open(port uint16) ([]ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil {
		return nil, 0, errors.New("encap: bind already open")
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.IPv6Unspecified(), port)))
	if err != nil {
		return nil, 0, err
	}
	b.conn = c
	receive := func(msgs []Message) (int, error) {
		m := &msgs[0]
		n, from, err := c.ReadFromUDPAddrPort(m.Buf[:cap(m.Buf)])
		if err != nil {
			return 0, err
		}
		m.Buf, m.Seg = m.Buf[:n], 0
		m.From = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		return 1, nil
	}
	return []ReceiveFunc{receive}, uint16(c.LocalAddr().(*net.UDPAddr).Port), nil
}

func (b *portableBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return nil
	}
	err := b.conn.Close()
	b.conn = nil
	return err
}

func (b *portableBind) Send(pkts [][]byte, to netip.AddrPort) error {
	b.mu.Lock()
	c := b.conn
	b.mu.Unlock()
	if c == nil {
		return net.ErrClosed
	}
	for _, p := range pkts {
		if _, err := c.WriteToUDPAddrPort(p, to); err != nil {
			return err
		}
	}
	return nil
}
