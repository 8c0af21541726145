package tunnel

import (
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// vnetOf finds the TUN's file when the device reads and writes with a
// virtio-net header (wireguard-go's NativeTun turns it on with TSO, and
// then batches). The offload flags are set again, to the same value
// NativeTun asks for first, because that is the only way to learn whether
// the kernel took UDP GSO.
func vnetOf(dev tun.Device) vnetTUN {
	nt, ok := dev.(*tun.NativeTun)
	if !ok || nt.BatchSize() <= 1 {
		return vnetTUN{}
	}
	f := nt.File()
	raw, err := f.SyscallConn()
	if err != nil {
		return vnetTUN{}
	}
	v := vnetTUN{file: f, raw: raw}
	raw.Control(func(fd uintptr) {
		const tcp = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		v.uso = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tcp|unix.TUN_F_USO4|unix.TUN_F_USO6) == nil
	})
	return v
}
