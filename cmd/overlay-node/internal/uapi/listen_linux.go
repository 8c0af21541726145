package uapi

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.zx2c4.com/wireguard/ipc"

	"github.com/overlay-node/overlay-node/cmd/internal/control"
)

// Listen claims the UAPI socket of iface, mode 0600 in a directory of mode
// 0700 (control.PrivateDir). A live socket there
// means the interface name is taken by another overlay-node or a
// wireguard-go, and Listen fails with control.ErrInUse; a
// stale one, left by a process that was killed, is replaced. Nothing is
// answered until Serve. Close removes the socket.
func Listen(iface string) (*Server, error) {
	path := SocketPath(iface)
	// ipc.UAPIOpen replaces a stale socket itself, but its error for a live
	// one cannot be told apart from others, and this is the one the
	// operator needs explained.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("interface %s is %w: %s answers; another overlay-node or wireguard-go runs on it (hint: stop it, or pass --interface NAME)",
			iface, control.ErrInUse, path)
	}
	// UAPIOpen would create the directory 0755.
	if err := control.PrivateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("uapi socket %s: %w", path, err)
	}
	f, err := ipc.UAPIOpen(iface)
	if err != nil {
		return nil, fmt.Errorf("uapi socket %s: %w", path, err)
	}
	// UAPIOpen creates it 0700 under its umask; nothing here is executable.
	if err := os.Chmod(path, 0o600); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("uapi socket %s: %w", path, err)
	}
	ln, err := ipc.UAPIListen(iface, f)
	f.Close() // UAPIListen holds its own descriptor
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("uapi socket %s: %w", path, err)
	}
	return newServer(ln, path), nil
}
