package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
)

// ErrNotRunning means no daemon answers on the socket: there is none, or
// it was killed and left a stale socket behind.
var ErrNotRunning = errors.New("no overlay-node is running")

// maxStatusBytes bounds the answer: a few hundred bytes per peer.
const maxStatusBytes = 64 << 20

// get fetches target (a path and query) from the daemon whose control
// socket is path, and returns the status code and body. The error matches
// ErrNotRunning if no daemon answers.
func get(ctx context.Context, path, target string) (int, []byte, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://overlay-node"+target, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return 0, nil, fmt.Errorf("%w: nothing answers on %s", ErrNotRunning, path)
		}
		return 0, nil, fmt.Errorf("control socket %s: %w", path, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return resp.StatusCode, body, nil
}

// BadRequestError is the daemon's answer to a question it cannot answer
// as asked, such as a policy why about a node the mesh does not have.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

// FetchWhy asks the daemon whose control socket is path whether the rules
// it has loaded allow a new flow from from to to on port, as policy why
// does, and returns the lines to print. A question the daemon cannot
// answer gives a *BadRequestError; no daemon, an error matching
// ErrNotRunning.
func FetchWhy(ctx context.Context, path, from, to, port string) ([]string, error) {
	code, body, err := get(ctx, path, WhyPath+"?"+url.Values{"from": {from}, "to": {to}, "port": {port}}.Encode())
	if err != nil {
		return nil, err
	}
	var ans WhyAnswer
	if code != http.StatusOK && code != http.StatusBadRequest {
		return nil, fmt.Errorf("control socket %s: %s (hint: the daemon may be older than this command)", path, http.StatusText(code))
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("control socket %s: bad answer: %w", path, err)
	}
	if code == http.StatusBadRequest {
		return nil, &BadRequestError{ans.Error}
	}
	return ans.Lines, nil
}

// FetchStatus asks the daemon whose control socket is path for its Status.
// It returns the JSON as the daemon sent it, to print unchanged, and its
// decoded form. The error matches ErrNotRunning if no daemon answers.
func FetchStatus(ctx context.Context, path string) ([]byte, *Status, error) {
	code, body, err := get(ctx, path, StatusPath)
	if err != nil {
		return nil, nil, err
	}
	if code != http.StatusOK {
		return nil, nil, fmt.Errorf("control socket %s: %d %s", path, code, http.StatusText(code))
	}
	var st Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, nil, fmt.Errorf("control socket %s: bad status: %w", path, err)
	}
	if st.Schema != SchemaVersion {
		return nil, nil, fmt.Errorf("control socket %s: status schema %d, this overlay-node reads %d (hint: run the status command of the daemon's version)",
			path, st.Schema, SchemaVersion)
	}
	return body, &st, nil
}

// unwrapURL drops the *url.Error wrapping, whose message repeats the
// made-up URL rather than the socket.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// FetchNode asks the daemon whose control socket is path who it is and
// what it hands to containers. The error matches ErrNotRunning if no
// daemon answers.
func FetchNode(ctx context.Context, path string) (*Node, error) {
	code, body, err := get(ctx, path, NodePath)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("control socket %s: %s: %d %s", path, NodePath, code, http.StatusText(code))
	}
	var n Node
	if err := json.Unmarshal(body, &n); err != nil {
		return nil, fmt.Errorf("control socket %s: bad answer to %s: %w", path, NodePath, err)
	}
	return &n, nil
}
