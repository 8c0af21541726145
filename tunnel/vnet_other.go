//go:build !linux

package tunnel

import "golang.zx2c4.com/wireguard/tun"

// vnetOf: only Linux's TUN takes a virtio-net header.
func vnetOf(tun.Device) vnetTUN { return vnetTUN{} }
