//go:build !linux

package tundev

import "golang.zx2c4.com/wireguard/tun"

// framesOf: only Linux's TUN takes a virtio-net header.
func framesOf(tun.Device) Framed { return nil }
