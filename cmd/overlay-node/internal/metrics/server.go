package metrics

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/overlay-node/overlay-node/cmd/internal/httpserve"
)

// Path is where the server answers scrapes.
const Path = "/metrics"

// Server limits: a scrape is small and quick, so a slow client is cut off
// rather than left holding a connection.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
)

// Server serves a registry over HTTP. Listen binds the address so that a
// port in use fails the daemon's start at once; Serve starts answering once
// the registry is complete.
type Server struct {
	*httpserve.Server
}

// Listen binds addr (host:port). Nothing is served until Serve.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w (hint: pick a free address with --metrics HOST:PORT)", addr, err)
	}
	return &Server{httpserve.New(ln)}, nil
}

// Addr returns the bound address, with the port resolved if addr had :0.
func (s *Server) Addr() net.Addr { return s.Listener().Addr() }

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
	addr := s.Addr().String()
	s.Server.Serve(&http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
	}, func(err error) { log.Error("metrics server stopped", "addr", addr, "err", err) })
	log.Info("serving metrics", "addr", addr, "path", Path)
}

// slogErrorLog adapts slog to promhttp's Println-style error log.
type slogErrorLog struct{ log *slog.Logger }

func (l slogErrorLog) Println(v ...any) {
	l.log.Warn("metrics scrape error", "err", fmt.Sprint(v...))
}
