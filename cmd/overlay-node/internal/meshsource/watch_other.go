//go:build !linux

package meshsource

import (
	"os"
	"time"
)

// watcher polls the file once a second where inotify is not available.
type watcher struct {
	events chan struct{}
	done   chan struct{}
}

func newWatcher(path string) (*watcher, error) {
	w := &watcher{events: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		var last os.FileInfo
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-t.C:
			}
			fi, err := os.Stat(path)
			if err == nil && (last == nil || fi.ModTime() != last.ModTime() || fi.Size() != last.Size()) {
				select {
				case w.events <- struct{}{}:
				default:
				}
			}
			last = fi
		}
	}()
	return w, nil
}

func (w *watcher) rearm() error { return nil }

func (w *watcher) close() { close(w.done) }
