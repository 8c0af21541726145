//go:build !linux

package tunnel

import (
	"os"

	"golang.zx2c4.com/wireguard/tun"
)

// vnetFile: only Linux's TUN takes a virtio-net header.
func vnetFile(tun.Device) (*os.File, bool) { return nil, false }
