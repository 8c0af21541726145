// Package lease hands out container addresses from a network and keeps
// them on disk, so that every plugin process on a host sees the same
// leases.
//
// A Store is a directory: one file per leased address, named by the
// address and holding the container ID and interface name that hold it,
// and a lock file. Every operation takes an exclusive flock on the lock
// file, so concurrent ADDs from separate processes get distinct addresses,
// and a process that dies mid-way releases the lock with it.
package lease

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/overlay-node/overlay-node/internal/netaddr"
)

// ErrExhausted means every address of the network is leased.
var ErrExhausted = errors.New("no free address")

// Holder is who holds a lease: the attachment of a container to a network,
// as CNI names it.
type Holder struct {
	ContainerID string
	IfName      string
}

func (h Holder) String() string { return h.ContainerID + "\n" + h.IfName }

// Store is the leases of one network on this host.
type Store struct {
	dir string // immutable
}

// Open returns the store in dir, creating it if need be.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lease store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Gateway returns the address of p that the host's bridge takes: its
// first host address.
func Gateway(p netip.Prefix) netip.Addr { return p.Masked().Addr().Next() }

// lock takes the store's lock; the returned function releases it.
func (s *Store) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lease store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lease store: lock: %w", err)
	}
	return func() { f.Close() }, nil // closing drops the flock
}

// Acquire leases an address of p to h: the one h holds already, or the
// lowest free one after the gateway (and before the IPv4 broadcast
// address). It fails with ErrExhausted when none is free.
func (s *Store) Acquire(p netip.Prefix, h Holder) (netip.Addr, error) {
	unlock, err := s.lock()
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()
	held, err := s.list()
	if err != nil {
		return netip.Addr{}, err
	}
	for a, hh := range held {
		if hh == h && p.Contains(a) {
			return a, nil
		}
	}
	last := netaddr.Last(p)
	for a := Gateway(p).Next(); a.IsValid() && p.Contains(a); a = a.Next() {
		if a.Is4() && a == last {
			break // the broadcast address
		}
		if _, taken := held[a]; taken {
			continue
		}
		if err := os.WriteFile(s.file(a), []byte(h.String()), 0o600); err != nil {
			return netip.Addr{}, fmt.Errorf("lease store: %w", err)
		}
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("%w in %s: all %d leased", ErrExhausted, p, len(held))
}

// Release gives back every address h holds. Releasing what is not held
// is no error.
func (s *Store) Release(h Holder) error {
	return s.releaseIf(func(hh Holder) bool { return hh == h })
}

// Keep releases every lease whose holder is not in valid.
func (s *Store) Keep(valid []Holder) error {
	keep := make(map[Holder]bool, len(valid))
	for _, h := range valid {
		keep[h] = true
	}
	return s.releaseIf(func(h Holder) bool { return !keep[h] })
}

func (s *Store) releaseIf(drop func(Holder) bool) error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	held, err := s.list()
	if err != nil {
		return err
	}
	var errs []error
	for a, h := range held {
		if drop(h) {
			if err := os.Remove(s.file(a)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Leases returns every leased address and its holder.
func (s *Store) Leases() (map[netip.Addr]Holder, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.list()
}

// list reads the leases; the caller holds the lock. Files that are not
// leases are skipped.
func (s *Store) list() (map[netip.Addr]Holder, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("lease store: %w", err)
	}
	held := make(map[netip.Addr]Holder, len(ents))
	for _, e := range ents {
		a, err := netip.ParseAddr(strings.ReplaceAll(e.Name(), "_", ":"))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("lease store: %w", err)
		}
		id, ifName, _ := strings.Cut(string(b), "\n")
		held[a] = Holder{ContainerID: id, IfName: ifName}
	}
	return held, nil
}

// file is where the lease of a is kept. Colons are kept out of file names.
func (s *Store) file(a netip.Addr) string {
	return filepath.Join(s.dir, strings.ReplaceAll(a.String(), ":", "_"))
}
