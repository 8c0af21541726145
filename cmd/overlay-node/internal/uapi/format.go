// Package uapi answers WireGuard's cross-platform userspace API on
// /var/run/wireguard/<interface>.sock, so that stock `wg show` and
// wgctrl-based tools see an overlay-node as they see wireguard-go.
//
// The socket is read-only. `get=1` is answered in the exact format of
// wireguard-go (https://www.wireguard.com/xplatform/), with two deliberate
// omissions: private_key and preshared_key are never written, because no
// key material leaves the daemon. `wg show` therefore prints no "public
// key" and "private key" lines for the interface (it derives the former
// from the latter), and a wgctrl client sees a zero Device.PrivateKey.
// `set=1` is refused with EPERM: the mesh file is the source of truth, and
// a change made over UAPI would silently disagree with it.
package uapi

import (
	"bufio"
	"encoding/hex"
	"io"
	"strconv"
	"syscall"
	"time"

	"github.com/overlay-node/overlay-node/tunnel"
)

// Status values that end an answer. Like wireguard-go, errors are written
// as negative errno numbers, which wg negates back: for errnoSetDenied,
// `wg set` prints "Operation not permitted".
const (
	errnoOK        = 0
	errnoSetDenied = -int(syscall.EPERM)
)

// protocolVersion is the only WireGuard protocol version there is.
const protocolVersion = 1

// WriteGet writes the answer to `get=1` for st: the device's listen port,
// then for each peer its public key, protocol version, endpoint (when
// known), last handshake time, transfer, keepalive and allowed IPs, then
// errno=0 and the blank line that ends the answer.
func WriteGet(w io.Writer, st tunnel.Stats) error {
	b := bufio.NewWriter(w)
	line := func(key, val string) {
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(val)
		b.WriteByte('\n')
	}
	num := func(key string, v uint64) { line(key, strconv.FormatUint(v, 10)) }

	if st.ListenPort != 0 {
		num("listen_port", uint64(st.ListenPort))
	}
	for i := range st.Peers {
		p := &st.Peers[i]
		line("public_key", hex.EncodeToString(p.PublicKey[:]))
		num("protocol_version", protocolVersion)
		if p.Endpoint.IsValid() {
			line("endpoint", p.Endpoint.String())
		}
		var sec, nsec uint64
		if !p.LastHandshake.IsZero() {
			sec, nsec = uint64(p.LastHandshake.Unix()), uint64(p.LastHandshake.Nanosecond())
		}
		num("last_handshake_time_sec", sec)
		num("last_handshake_time_nsec", nsec)
		num("tx_bytes", p.TxBytes)
		num("rx_bytes", p.RxBytes)
		num("persistent_keepalive_interval", uint64(p.PersistentKeepalive/time.Second))
		for _, pfx := range p.AllowedIPs {
			line("allowed_ip", pfx.String())
		}
	}
	writeErrno(b, errnoOK)
	return b.Flush()
}

// writeErrno ends an answer with its status.
func writeErrno(b *bufio.Writer, errno int) {
	b.WriteString("errno=")
	b.WriteString(strconv.Itoa(errno))
	b.WriteString("\n\n")
}
