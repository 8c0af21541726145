package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the server answers scrapes.
const Path = "/metrics"

// Server limits: a scrape is small and quick, so a slow client is cut off
// rather than left holding a connection.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 2 * time.Second
)

// Server serves a registry over HTTP. Listen binds the address so that a
// port in use fails the daemon's start at once; Serve starts answering once
// the registry is complete.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve's goroutine returns; nil before Serve
}

// Listen binds addr (host:port). Nothing is served until Serve.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w (hint: pick a free address with --metrics HOST:PORT)", addr, err)
	}
	return &Server{ln: ln}, nil
}

// Addr returns the bound address, with the port resolved if addr had :0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers scrapes of g on Path, in the background, until Close.
// Scrape errors go to log.
func (s *Server) Serve(g prometheus.Gatherer, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slogErrorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "overlay-node: metrics are at %s\n", Path)
	})
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", s.ln.Addr().String(), "err", err)
		}
	}()
	log.Info("serving metrics", "addr", s.ln.Addr().String(), "path", Path)
}

// Close stops serving, giving scrapes in flight a moment to finish, and
// releases the address.
func (s *Server) Close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

// slogErrorLog adapts slog to promhttp's Println-style error log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) {
	l.log.Warn("metrics scrape error", "err", fmt.Sprint(v...))
}
