package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are the PEM files of a server started with StartTLS: the CA
// that signed the certificates, and client certificates it accepts. With
// etcd's authentication on, a client certificate's common name is its
// user: node for ClientCert, admin and root for the others.
type TLSFiles struct {
	CA, ClientCert, ClientKey string
	AdminCert, AdminKey       string
	RootCert, RootKey         string
	serverCert, serverKey     string
}

// StartTLS starts etcd on loopback with TLS and client certificate
// authentication, from a throwaway CA, and returns the client's files.
func StartTLS(t testing.TB) (*Server, TLSFiles) {
	t.Helper()
	Require(t)
	s := &Server{t: t, dir: t.TempDir(), addr: "127.0.0.1", client: freePort(t), peer: freePort(t)}
	s.URL = fmt.Sprintf("https://%s:%d", s.addr, s.client)
	files := writeCerts(t, s.dir)
	s.tls = &files
	s.Start()
	t.Cleanup(s.Stop)
	return s, files
}

func (f *TLSFiles) args() []string {
	return []string{"--cert-file", f.serverCert, "--key-file", f.serverKey,
		"--trusted-ca-file", f.CA, "--client-cert-auth"}
}

// writeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
func writeCerts(t testing.TB, dir string) TLSFiles {
	t.Helper()
	caKey, caCert := newCert(t, "test-ca", nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign
	})
	srvKey, srvCert := newCert(t, "etcd", caKey, caCert, func(c *x509.Certificate) {
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	})
	f := TLSFiles{
		CA:         filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "server.crt"), serverKey: filepath.Join(dir, "server.key"),
	}
	writePEM(t, f.CA, "CERTIFICATE", caCert.Raw)
	writePEM(t, f.serverCert, "CERTIFICATE", srvCert.Raw)
	writeKey(t, f.serverKey, srvKey)
	client := func(cn string) (certFile, keyFile string) {
		key, cert := newCert(t, cn, caKey, caCert, func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		})
		certFile, keyFile = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
		writePEM(t, certFile, "CERTIFICATE", cert.Raw)
		writeKey(t, keyFile, key)
		return certFile, keyFile
	}
	f.ClientCert, f.ClientKey = client("node")
	f.AdminCert, f.AdminKey = client("admin")
	f.RootCert, f.RootKey = client("root")
	return f
}

var serial int64

func newCert(t testing.TB, cn string, parentKey *ecdsa.PrivateKey, parent *x509.Certificate, edit func(*x509.Certificate)) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writeKey(t testing.TB, path string, key *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
