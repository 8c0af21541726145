// Package httpserve runs the daemon's small HTTP servers, the metrics
// endpoint and the control socket, with one lifecycle: the listener is
// bound first, so an address in use fails the daemon's start at once;
// serving starts once the daemon is ready; Close gives requests in flight a
// moment to finish.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// ShutdownTimeout is how long Close waits for requests in flight.
const ShutdownTimeout = 2 * time.Second

// Server is a bound listener that serves HTTP once Serve is called.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when serving stops; nil before Serve
}

// New wraps a bound listener. Nothing is served until Serve.
func New(ln net.Listener) *Server { return &Server{ln: ln} }

// Listener returns the bound listener.
func (s *Server) Listener() net.Listener { return s.ln }

// Serve runs srv on the listener in the background until Close. stopped
// is called if serving ends for any reason other than Close.
func (s *Server) Serve(srv *http.Server, stopped func(error)) {
	s.srv = srv
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			stopped(err)
		}
	}()
}

// Close stops serving, waiting up to ShutdownTimeout for requests in
// flight, and releases the listener.
func (s *Server) Close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
