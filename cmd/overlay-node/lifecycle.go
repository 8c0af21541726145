package main

import (
	"errors"
	"fmt"
)

// A service is one part of a running node with a lifecycle of its own: the
// engine, the sockets that wg and overlay-node status read, the metrics
// endpoint. The node drives every service the same way, in the order of
// node.services:
//
//   - open, in list order, claims what the service needs (a socket, a port,
//     the TUN device) and fails start-up at once if it cannot. It may use
//     what the services before it opened: n.dev once the engine is open.
//     An open that fails has released whatever it claimed.
//   - serve, in list order once every service is open, starts answering,
//     so nothing is served from a node that is half up. It cannot fail:
//     whatever can fail belongs in open.
//   - reload switches the service to next, a mesh that loadState has
//     already checked whole: everything a bad mesh file can break fails
//     there, before any service is touched. reload either succeeds or
//     fails having changed nothing. On success it returns undo, which puts
//     back what ran before; if a later service's reload fails, the node
//     calls the undos in reverse order, so a reload reaches every service
//     or none. undo cannot fail: it logs what it could not put back. A
//     service whose switch-over cannot fail (a pointer swap) needs no more
//     than that; one whose can (the kernel routes) must keep what it needs
//     to undo it.
//   - commit, for a service that implements committer, runs once a reload
//     has reached every service: it releases what the old configuration
//     held and the undo would have needed (the old DNS listeners). It
//     cannot fail.
//   - close, in reverse list order, stops the service and releases what
//     open claimed; also on the services already open when a later open
//     fails.
type service interface {
	open(n *node, st *meshState) error
	serve(n *node)
	reload(n *node, next *meshState) (undo func(), err error)
	close() error
}

// A committer is a service with work to do once a reload has reached every
// service, such as closing sockets the new configuration no longer uses.
type committer interface {
	commit()
}

// services runs a list of services through their lifecycle.
type services struct {
	list   []service
	opened int // list[:opened] are open
}

// start opens every service in order, then serves them. If one fails to
// open, the ones already open are closed in reverse order.
func (s *services) start(n *node, st *meshState) error {
	for _, sv := range s.list {
		if err := sv.open(n, st); err != nil {
			if cerr := s.close(); cerr != nil {
				err = fmt.Errorf("%w (while closing: %w)", err, cerr)
			}
			return err
		}
		s.opened++
	}
	for _, sv := range s.list {
		sv.serve(n)
	}
	return nil
}

// reload switches every service to next, or none: when one fails, those
// already switched are switched back, in reverse order. When all have
// switched, the committers commit.
func (s *services) reload(n *node, next *meshState) error {
	undos := make([]func(), 0, s.opened)
	for _, sv := range s.list[:s.opened] {
		undo, err := sv.reload(n, next)
		if err != nil {
			for i := len(undos) - 1; i >= 0; i-- {
				undos[i]()
			}
			return err
		}
		undos = append(undos, undo)
	}
	for _, sv := range s.list[:s.opened] {
		if c, ok := sv.(committer); ok {
			c.commit()
		}
	}
	return nil
}

// close closes the open services in reverse order and returns every error.
func (s *services) close() error {
	var errs []error
	for ; s.opened > 0; s.opened-- {
		errs = append(errs, s.list[s.opened-1].close())
	}
	return errors.Join(errs...)
}

// noUndo is the undo of a reload that changed nothing.
func noUndo() {}
