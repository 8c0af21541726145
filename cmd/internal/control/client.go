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
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://overlay-node"+StatusPath, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("%w: nothing answers on %s", ErrNotRunning, path)
		}
		return nil, nil, fmt.Errorf("control socket %s: %w", path, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("control socket %s: %s", path, resp.Status)
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
