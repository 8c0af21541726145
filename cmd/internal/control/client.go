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

// FetchStatus asks the daemon whose control socket is path for its Status.
// It returns the JSON as the daemon sent it, to print unchanged, and its
// decoded form. The error matches ErrNotRunning if no daemon answers.
func FetchStatus(ctx context.Context, path string) ([]byte, *Status, error) {
	var st Status
	body, err := get(ctx, path, StatusPath, &st)
	if err != nil {
		return nil, nil, err
	}
	if st.Schema != SchemaVersion {
		return nil, nil, fmt.Errorf("control socket %s: status schema %d, this overlay-node reads %d (hint: run the status command of the daemon's version)",
			path, st.Schema, SchemaVersion)
	}
	return body, &st, nil
}

// FetchNode asks the daemon whose control socket is path who it is and
// what it hands to containers. The error matches ErrNotRunning if no
// daemon answers.
func FetchNode(ctx context.Context, path string) (*Node, error) {
	var n Node
	if _, err := get(ctx, path, NodePath, &n); err != nil {
		return nil, err
	}
	return &n, nil
}

// get fetches the object at urlPath from the control socket at path into v
// and returns its JSON.
func get(ctx context.Context, path, urlPath string, v any) ([]byte, error) {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://overlay-node"+urlPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: nothing answers on %s", ErrNotRunning, path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("control socket %s: %s %s", path, urlPath, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("control socket %s: bad answer to %s: %w", path, urlPath, err)
	}
	return body, nil
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
