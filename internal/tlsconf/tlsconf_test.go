package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert makes a self-signed pair in dir and returns the paths.
func writeCert(t *testing.T, dir string, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := WriteSelfSigned(certFile, keyFile, hosts); err != nil {
		t.Fatalf("WriteSelfSigned: %v", err)
	}
	return certFile, keyFile
}

// pool trusts the certificate file as a CA, as a client given it would.
func pool(t *testing.T, certFile string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatalf("%s: no certificate", certFile)
	}
	return p
}

// handshake serves one TLS connection with cfg over loopback and returns
// what the client saw.
func handshake(t *testing.T, cfg *tls.Config, client *tls.Config) tls.ConnectionState {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		served <- c.(*tls.Conn).Handshake()
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client)
	if err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	defer conn.Close()
	if err := <-served; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return conn.ConnectionState()
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "localhost")
	other := t.TempDir()
	_, otherKey := writeCert(t, other, "localhost")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cert, key, want string
	}{
		{"no cert", "", keyFile, "must both be set"},
		{"no key", certFile, "", "must both be set"},
		{"missing", filepath.Join(dir, "none.pem"), keyFile, "no such file"},
		{"garbage cert", garbage, keyFile, "load"},
		{"key of another cert", certFile, otherKey, "private key does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, %v; want error containing %q", s, err, tt.want)
			}
		})
	}
}

func TestLoadAndServe(t *testing.T) {
	certFile, keyFile := writeCert(t, t.TempDir(), "localhost", "127.0.0.1")
	s, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if s.Certificate().Leaf == nil {
		t.Fatal("Certificate().Leaf is nil")
	}
	for _, tt := range []struct {
		name   string
		client *tls.Config
	}{
		{"TLS1.3", &tls.Config{RootCAs: pool(t, certFile), ServerName: "localhost"}},
		{"TLS1.2", &tls.Config{RootCAs: pool(t, certFile), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cs := handshake(t, s.Config(), tt.client)
			if got := Describe(cs); !strings.HasPrefix(got, tt.name+" TLS_") {
				t.Errorf("Describe = %q, want %q and a suite", got, tt.name)
			}
		})
	}
	t.Run("TLS1.1 refused", func(t *testing.T) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", s.Config())
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		client := &tls.Config{RootCAs: pool(t, certFile), ServerName: "localhost", MaxVersion: tls.VersionTLS11}
		d := &net.Dialer{Timeout: 10 * time.Second}
		if c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), client); err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "localhost")
	s, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.Config() // made before the reloads: must follow them
	first := s.Certificate()
	firstPool := pool(t, certFile)
	served := handshake(t, cfg, &tls.Config{RootCAs: firstPool, ServerName: "localhost"})
	if !bytes.Equal(served.PeerCertificates[0].Raw, first.Certificate[0]) {
		t.Fatal("handshake did not serve the loaded certificate")
	}

	// A new certificate in the same files, then Reload: a new handshake
	// gets it through the old Config.
	writeCert(t, dir, "localhost")
	if err := s.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	second := s.Certificate()
	if bytes.Equal(second.Certificate[0], first.Certificate[0]) {
		t.Fatal("Reload kept the old certificate")
	}
	secondPool := pool(t, certFile)
	served = handshake(t, cfg, &tls.Config{RootCAs: secondPool, ServerName: "localhost"})
	if !bytes.Equal(served.PeerCertificates[0].Raw, second.Certificate[0]) {
		t.Fatal("a handshake after Reload did not serve the new certificate")
	}

	// A broken file: Reload fails, the second certificate stays in service.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), "keeping the current certificate") {
		t.Fatalf("Reload of a broken file = %v, want an error keeping the certificate", err)
	}
	if s.Certificate() != second {
		t.Fatal("a failed Reload replaced the certificate")
	}
	served = handshake(t, cfg, &tls.Config{RootCAs: secondPool, ServerName: "localhost"})
	if !bytes.Equal(served.PeerCertificates[0].Raw, second.Certificate[0]) {
		t.Fatal("after a failed Reload the handshake did not serve the kept certificate")
	}

	// A vanished key: likewise.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Reload without a key = %v", err)
	}
	if s.Certificate() != second {
		t.Fatal("a failed Reload replaced the certificate")
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		cs   tls.ConnectionState
		want string
	}{
		{tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256},
			"TLS1.3 TLS_AES_128_GCM_SHA256"},
		{tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
			"TLS1.2 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
		{tls.ConnectionState{HandshakeComplete: true, Version: 0x0399, CipherSuite: 0xfefe},
			"0x0399 0xFEFE"},
		{tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}, ""},
	}
	for _, tt := range tests {
		if got := Describe(tt.cs); got != tt.want {
			t.Errorf("Describe(%#x, %#x) = %q, want %q", tt.cs.Version, tt.cs.CipherSuite, got, tt.want)
		}
	}
}

func TestWriteSelfSigned(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, "localhost", "127.0.0.1", "::1")
	for file, want := range map[string]os.FileMode{certFile: 0o644, keyFile: 0o600} {
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", file, fi.Mode().Perm(), want)
		}
	}
	s, err := Load(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf := s.Certificate().Leaf
	if !leaf.IsCA || !leaf.BasicConstraintsValid {
		t.Error("not a CA certificate")
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Error("no digitalSignature key usage")
	}
	if len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth {
		t.Errorf("ExtKeyUsage = %v, want serverAuth", leaf.ExtKeyUsage)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("key algorithm %v, want ECDSA", leaf.PublicKeyAlgorithm)
	}
	if life := leaf.NotAfter.Sub(time.Now()); life < 9*365*24*time.Hour {
		t.Errorf("valid for only %v more", life)
	}
	if !leaf.NotBefore.Before(time.Now().Add(-50 * time.Minute)) {
		t.Errorf("NotBefore %v leaves no room for clock skew", leaf.NotBefore)
	}
	roots := pool(t, certFile)
	tests := []struct {
		name string
		ok   bool
	}{
		{"localhost", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"example.org", false},
		{"127.0.0.2", false},
	}
	for _, tt := range tests {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: tt.name, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if (err == nil) != tt.ok {
			t.Errorf("Verify for %s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}

	other := t.TempDir()
	otherCert, otherKey := writeCert(t, other, "localhost")
	o, err := Load(otherCert, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if o.Certificate().Leaf.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
	if err := WriteSelfSigned(filepath.Join(other, "c"), filepath.Join(other, "k"), nil); err == nil {
		t.Error("WriteSelfSigned without hosts succeeded")
	}
	if err := WriteSelfSigned(filepath.Join(other, "no", "c"), filepath.Join(other, "no", "k"), []string{"x"}); err == nil {
		t.Error("WriteSelfSigned into a missing directory succeeded")
	}
}
