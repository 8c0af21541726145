package meshsource

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// watcher reports changes in the directories that hold a file and its
// symlinks, with inotify.
type watcher struct {
	path   string
	fd     int
	file   *os.File      // fd, non-blocking, so that close wakes read
	events chan struct{} // one value per read of events, never blocks the reader

	mu      sync.Mutex
	watches map[string]int // directory to watch descriptor
	closed  bool
}

// dirEvents are the changes to a directory's entries that can change what
// a path in it reads: a write, a create, a rename into or out of it, a
// delete, and a change of attributes (a chmod can make it readable).
const dirEvents = unix.IN_CLOSE_WRITE | unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO |
	unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ATTRIB

func newWatcher(path string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &watcher{path: path, fd: fd, file: os.NewFile(uintptr(fd), "inotify"), events: make(chan struct{}, 1), watches: make(map[string]int)}
	if err := w.rearm(); err != nil {
		w.file.Close()
		return nil, err
	}
	go w.read()
	return w, nil
}

// rearm watches the directories path leads through now.
func (w *watcher) rearm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	for _, dir := range dirsOf(w.path) {
		if _, ok := w.watches[dir]; ok {
			continue
		}
		wd, err := unix.InotifyAddWatch(w.fd, dir, dirEvents)
		if err != nil {
			if os.IsNotExist(err) {
				continue // swapped away already; the next rearm finds the new one
			}
			return fmt.Errorf("inotify watch %s: %w", dir, err)
		}
		w.watches[dir] = wd
	}
	return nil
}

// read signals events until the descriptor is closed. The events
// themselves do not matter: any change in a watched directory means read
// the file again.
func (w *watcher) read() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.file.Read(buf)
		if err != nil || n <= 0 {
			return
		}
		select {
		case w.events <- struct{}{}:
		default:
		}
	}
}

// close stops the watch; read returns once the descriptor is closed.
func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.file.Close()
}
