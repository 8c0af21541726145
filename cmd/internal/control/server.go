package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/overlay-node/overlay-node/cmd/internal/httpserve"
)

// Dir is where the control sockets live, one per interface. Like the
// WireGuard UAPI directory, it is global, not per network namespace.
const Dir = "/var/run/overlay-node"

// URL paths of the objects served.
const (
	StatusPath = "/v1/status" // Status
	NodePath   = "/v1/node"   // Node
)

// WhyPath is the URL path of policy why: a GET with the query parameters
// from, to and port answers a WhyAnswer.
const WhyPath = "/v1/policy/why"

// Why explains, by the rules the node has loaded, whether a new flow from
// from to to on port (as the arguments of overlay-node policy why) is
// allowed: the lines to print. An error is about the arguments.
type Why func(from, to, port string) ([]string, error)

// WhyAnswer is the JSON answer of WhyPath: the lines to print, or, with
// status 400, what is wrong with the question.
type WhyAnswer struct {
	Lines []string `json:"lines,omitempty"`
	Error string   `json:"error,omitempty"`
}

// SocketPath returns the control socket of the interface iface.
func SocketPath(iface string) string { return filepath.Join(Dir, iface+".sock") }

// ErrInUse means another live process serves a socket the daemon claims:
// its control socket, or its WireGuard UAPI socket.
var ErrInUse = errors.New("in use")

// Server limits: a request is one small GET from the local machine.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 10 * time.Second
)

// StatusFunc returns the Status of the node as of now; node is what the
// server was last told about it.
type StatusFunc func(node Node) Status

// Server serves the control API on a unix socket.
type Server struct {
	// Immutable.
	http *httpserve.Server
	path string

	// Set by Serve.
	status StatusFunc

	// Atomic: replaced whole when the mesh file is reloaded.
	node atomic.Pointer[Node]
	why  atomic.Pointer[Why]
}

// Listen claims the socket at path, mode 0600, in a directory of mode 0700
// (see PrivateDir). A live socket there fails with ErrInUse; a stale one,
// left by a process that was killed, is replaced. Nothing is answered until
// Serve. Close removes the socket.
func Listen(path string) (*Server, error) {
	if err := PrivateDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	// The socket is created under the process umask; it is narrowed before
	// anything is served on it.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return &Server{http: httpserve.New(ln), path: path}, nil
}

// PrivateDir makes dir, the directory of a daemon's sockets, root's alone:
// it creates it with mode 0700, or narrows an existing one to 0700. The
// sockets in it are 0600 as well; the directory keeps others from even
// connecting to a socket in the moment between its creation and its chmod.
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory (hint: remove it)", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		return os.Chmod(dir, 0o700)
	}
	return nil
}

// removeStale removes a socket at path that no process answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: exists and is not a socket (hint: remove it)", path)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s %w: another overlay-node answers on it", path, ErrInUse)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket: remove stale %s: %w", path, err)
	}
	return nil
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// SetNode replaces the node's identity, as after a reload.
func (s *Server) SetNode(n Node) { s.node.Store(&n) }

// SetWhy replaces what answers policy why, as after a reload. Until it is
// set the server answers 404.
func (s *Server) SetWhy(w Why) { s.why.Store(&w) }

// Serve answers requests in the background until Close, calling status
// for every Status.
func (s *Server) Serve(status StatusFunc, node Node, log *slog.Logger) {
	s.status = status
	s.SetNode(node)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatusPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.status(*s.node.Load()))
	})
	mux.HandleFunc("GET "+NodePath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.node.Load())
	})
	mux.HandleFunc("GET "+WhyPath, s.handleWhy)
	s.http.Serve(&http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		WriteTimeout:      writeTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, func(err error) {
		log.Warn("control socket closed; overlay-node status no longer sees this node", "socket", s.path, "err", err)
	})
	log.Info("serving control socket", "socket", s.path)
}

// writeJSON answers with v, indented for people reading it with curl.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) handleWhy(w http.ResponseWriter, r *http.Request) {
	why := s.why.Load()
	if why == nil {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	var ans WhyAnswer
	var err error
	ans.Lines, err = (*why)(q.Get("from"), q.Get("to"), q.Get("port"))
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		ans.Error = err.Error()
		w.WriteHeader(http.StatusBadRequest)
	}
	json.NewEncoder(w).Encode(ans)
}

// Close stops serving and removes the socket.
func (s *Server) Close() error { return s.http.Close() }
