package meshsource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/overlay-node/overlay-node/config"
)

// Debounce is how long a watched file must stay quiet before it is read:
// an editor's save or a ConfigMap update is several file system events,
// and the mesh is read once they are over.
const Debounce = 200 * time.Millisecond

// File is a mesh file on disk. Without a watch it is read on request
// (start-up and SIGHUP); with one, it is read again whenever it changes.
type File struct {
	path    string
	updates chan Snapshot // nil without a watch

	stop     context.CancelFunc
	stopped  sync.WaitGroup
	mu       sync.Mutex
	lastSeen []byte // guarded by mu: the file as last read
}

// NewFile returns the source for the mesh file at path. With watch, it
// watches the file (and the directory it is in, so that an atomic rename
// or a Kubernetes ConfigMap's symlink swap is seen) and delivers the file
// on Updates each time it changes, Debounce after the last event. A file
// that is mid-write and does not parse is still delivered: the node
// rejects it, and the next change delivers it again.
func NewFile(path string, watch bool, log *slog.Logger) (*File, error) {
	f := &File{path: path, stop: func() {}}
	if !watch {
		return f, nil
	}
	w, err := newWatcher(path)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", path, err)
	}
	f.updates = make(chan Snapshot, 1)
	ctx, cancel := context.WithCancel(context.Background())
	f.stop = cancel
	f.stopped.Add(1)
	go func() {
		defer f.stopped.Done()
		f.watch(ctx, w, log)
	}()
	return f, nil
}

// Kind implements Source.
func (f *File) Kind() string { return "file" }

// Read implements Source.
func (f *File) Read(context.Context) (Snapshot, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return Snapshot{}, fmt.Errorf("%w: %s does not exist (hint: pass the mesh file shared by all nodes with -c)", config.ErrNoConfig, f.path)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("read mesh file: %w", err)
	}
	f.mu.Lock()
	f.lastSeen = data
	f.mu.Unlock()
	return Snapshot{Name: f.path, Data: data}, nil
}

// Updates implements Source.
func (f *File) Updates() <-chan Snapshot { return f.updates }

// Reconnects implements Source: a file has nothing to reconnect to.
func (f *File) Reconnects() uint64 { return 0 }

// Close implements Source.
func (f *File) Close() error {
	f.stop()
	f.stopped.Wait()
	return nil
}

// watch reads the file Debounce after each burst of events, and delivers
// it when its bytes changed.
func (f *File) watch(ctx context.Context, w *watcher, log *slog.Logger) {
	defer w.close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.events:
			timer.Reset(Debounce)
		case <-timer.C:
			// Directories may have been swapped: watch what the path
			// points at now.
			if err := w.rearm(); err != nil {
				log.Warn("mesh file watch", "err", err)
			}
			data, err := os.ReadFile(f.path)
			if err != nil {
				// Mid-swap or deleted: the next change tries again.
				log.Warn("mesh file changed but cannot be read; waiting for the next change", "err", err)
				continue
			}
			f.mu.Lock()
			same := string(data) == string(f.lastSeen)
			f.lastSeen = data
			f.mu.Unlock()
			if !same {
				offer(f.updates, Snapshot{Name: f.path, Data: data})
			}
		}
	}
}

// dirsOf returns the directories to watch for path: its own, and that of
// every link on the way to the file it resolves to, so that both an edit
// in place and a swapped symlink are seen.
func dirsOf(path string) []string {
	dirs := []string{filepath.Dir(path)}
	p := path
	for range 16 { // a symlink loop stops here
		target, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		dirs = append(dirs, filepath.Dir(target))
		p = target
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		dirs = append(dirs, filepath.Dir(real))
	}
	return dirs
}
