package meshsource

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// probeWait is how long a probe waits, after the TLS handshake, for the
// server to refuse the client's certificate: with TLS 1.3 the server
// checks it after the client has finished its side of the handshake.
const probeWait = 300 * time.Millisecond

// Explain adds to err, from a request to etcd that failed, why etcd could
// not be reached, when a probe of the endpoints finds out. A request
// itself says little: the gRPC client retries a refused connection or a
// failed TLS handshake quietly until the deadline.
func Explain(ctx context.Context, cfg EtcdConfig, err error) error {
	if err == nil {
		return nil
	}
	if cause := Probe(ctx, cfg); cause != nil {
		return fmt.Errorf("%w (%w)", err, cause)
	}
	return err
}

// Probe connects to each of cfg's endpoints as the client does, over TCP
// and then, for https or with TLS files, with a TLS handshake. It returns
// nil as soon as one endpoint accepts, and otherwise why each did not.
func Probe(ctx context.Context, cfg EtcdConfig) error {
	tlsConfig, err := cfg.tlsConfig()
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range cfg.Endpoints {
		err := probe(ctx, ep, tlsConfig)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", ep, err))
	}
	return errors.Join(errs...)
}

func probe(ctx context.Context, endpoint string, tlsConfig *tls.Config) error {
	hostPort, secure := endpoint, tlsConfig != nil
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		hostPort, secure = u.Host, secure || u.Scheme == "https"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return err
	}
	defer conn.Close()
	if !secure {
		return nil
	}
	c := &tls.Config{}
	if tlsConfig != nil {
		c = tlsConfig.Clone()
	}
	if c.ServerName == "" {
		host, _, err := net.SplitHostPort(hostPort)
		if err != nil {
			host = hostPort
		}
		c.ServerName = host
	}
	tc := tls.Client(conn, c)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake: %w", err)
	}
	tc.SetReadDeadline(time.Now().Add(probeWait)) //nolint:errcheck // the read fails instead
	if _, err := tc.Read(make([]byte, 1)); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("TLS: the server refused this client: %w", err)
	}
	return nil
}
