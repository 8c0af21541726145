package main

import (
	"errors"
	"slices"
	"testing"
)

// fakeService records every call of the lifecycle in a log shared by the
// services of a test, and fails the calls it is told to.
type fakeService struct {
	name               string
	log                *[]string
	failOpen, failLoad bool
	loaded             *meshState // what reload last switched to; nil after an undo
}

var errFake = errors.New("fake failure")

func (f *fakeService) record(call string) { *f.log = append(*f.log, call+" "+f.name) }

func (f *fakeService) open(*node, *meshState) error {
	f.record("open")
	if f.failOpen {
		return errFake
	}
	return nil
}

func (f *fakeService) serve(*node) { f.record("serve") }

func (f *fakeService) reload(_ *node, next *meshState) (func(), error) {
	f.record("reload")
	if f.failLoad {
		return nil, errFake
	}
	prev := f.loaded
	f.loaded = next
	return func() { f.record("undo"); f.loaded = prev }, nil
}

func (f *fakeService) close() error {
	f.record("close")
	return nil
}

// fakeServices returns services named a, b, c... logging to log.
func fakeServices(log *[]string, names ...string) (services, []*fakeService) {
	var s services
	var fakes []*fakeService
	for _, name := range names {
		f := &fakeService{name: name, log: log}
		s.list = append(s.list, f)
		fakes = append(fakes, f)
	}
	return s, fakes
}

func checkLog(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

// Every service opens before any serves; close goes in reverse.
func TestServicesStartAndClose(t *testing.T) {
	var log []string
	s, _ := fakeServices(&log, "a", "b", "c")
	if err := s.start(nil, &meshState{}); err != nil {
		t.Fatal(err)
	}
	checkLog(t, "start", log, []string{"open a", "open b", "open c", "serve a", "serve b", "serve c"})
	log = nil
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, "close", log, []string{"close c", "close b", "close a"})
	log = nil
	if err := s.close(); err != nil || len(log) != 0 {
		t.Errorf("second close: got %v and calls %q, want nothing", err, log)
	}
}

// A failed open closes the services already open, in reverse, and nothing
// is served.
func TestServicesStartFailure(t *testing.T) {
	var log []string
	s, fakes := fakeServices(&log, "a", "b", "c", "d")
	fakes[2].failOpen = true
	if err := s.start(nil, &meshState{}); !errors.Is(err, errFake) {
		t.Fatalf("start: got %v, want the open's error", err)
	}
	checkLog(t, "failed start", log, []string{"open a", "open b", "open c", "close b", "close a"})
	log = nil
	if err := s.close(); err != nil || len(log) != 0 {
		t.Errorf("close after a failed start: got %v and calls %q, want nothing", err, log)
	}
}

// A reload reaches every service, in order, with the same mesh.
func TestServicesReload(t *testing.T) {
	var log []string
	s, fakes := fakeServices(&log, "a", "b", "c")
	if err := s.start(nil, &meshState{}); err != nil {
		t.Fatal(err)
	}
	log = nil
	next := &meshState{peers: 7}
	if err := s.reload(nil, next); err != nil {
		t.Fatal(err)
	}
	checkLog(t, "reload", log, []string{"reload a", "reload b", "reload c"})
	for _, f := range fakes {
		if f.loaded != next {
			t.Errorf("service %s: reloaded to %p, want %p", f.name, f.loaded, next)
		}
	}
}

// A failing reload undoes the services it already reloaded, in reverse,
// and never reaches the ones after it: every service runs what it ran.
func TestServicesReloadFailure(t *testing.T) {
	var log []string
	s, fakes := fakeServices(&log, "a", "b", "c", "d")
	if err := s.start(nil, &meshState{}); err != nil {
		t.Fatal(err)
	}
	first := &meshState{peers: 1}
	if err := s.reload(nil, first); err != nil {
		t.Fatal(err)
	}
	log = nil
	fakes[2].failLoad = true
	if err := s.reload(nil, &meshState{peers: 2}); !errors.Is(err, errFake) {
		t.Fatalf("reload: got %v, want the service's error", err)
	}
	checkLog(t, "failed reload", log, []string{"reload a", "reload b", "reload c", "undo b", "undo a"})
	for _, f := range fakes {
		if f.loaded != first {
			t.Errorf("service %s: runs %p after a failed reload, want the previous %p", f.name, f.loaded, first)
		}
	}
}

// committingFake is a fakeService that also commits.
type committingFake struct{ *fakeService }

func (c committingFake) commit() { c.record("commit") }

// Committers commit once every service has reloaded, and never after a
// failed reload.
func TestServicesReloadCommit(t *testing.T) {
	var log []string
	s, fakes := fakeServices(&log, "a", "b", "c")
	s.list[0] = committingFake{fakes[0]}
	s.list[2] = committingFake{fakes[2]}
	if err := s.start(nil, &meshState{}); err != nil {
		t.Fatal(err)
	}
	log = nil
	if err := s.reload(nil, &meshState{peers: 1}); err != nil {
		t.Fatal(err)
	}
	checkLog(t, "reload", log, []string{"reload a", "reload b", "reload c", "commit a", "commit c"})
	log = nil
	fakes[2].failLoad = true
	if err := s.reload(nil, &meshState{peers: 2}); !errors.Is(err, errFake) {
		t.Fatalf("reload: got %v, want the service's error", err)
	}
	checkLog(t, "failed reload", log, []string{"reload a", "reload b", "reload c", "undo b", "undo a"})
}
