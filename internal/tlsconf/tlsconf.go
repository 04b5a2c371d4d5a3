// Package tlsconf is the one TLS loader of every mailroom daemon.
//
// A Store holds the current certificate and key, read from two PEM files
// (the certificate file may carry the chain after the leaf). Reload, called
// on SIGHUP, reads them again and swaps them in atomically; if the new files
// do not load, the old certificate stays in service and Reload says why.
// The *tls.Config from Config looks the certificate up in the Store at every
// handshake, so a reload applies to new connections without a restart, also
// for listeners made before it.
//
// Config asks for TLS 1.2 at least and otherwise keeps Go's defaults, whose
// TLS 1.2 cipher suites are all forward secret and AEAD.
//
// WriteSelfSigned makes the certificate of `make run` and of tests: ECDSA
// P-256, valid for ten years, a CA certificate of its own, so the file itself
// is the trust anchor handed to clients.
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// Store holds the current certificate; safe for concurrent use.
type Store struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// Load reads the certificate and key from PEM files. It fails if either
// name is "", a file cannot be read, the key does not match the
// certificate, or the leaf certificate does not parse.
func Load(certFile, keyFile string) (*Store, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: certificate and key files must both be set")
	}
	s := &Store{certFile: certFile, keyFile: keyFile}
	cert, err := loadPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	s.cur.Store(cert)
	return s, nil
}

// Reload reads the files again and swaps the new certificate in. On error
// the current certificate stays in service and the error says why.
func (s *Store) Reload() error {
	cert, err := loadPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("%w (keeping the current certificate)", err)
	}
	s.cur.Store(cert)
	return nil
}

// Certificate returns the certificate in service.
func (s *Store) Certificate() *tls.Certificate {
	return s.cur.Load()
}

// Config returns a new server configuration, TLS 1.2 or later, whose
// certificate is looked up in the Store at each handshake. Callers may
// adjust the returned value; it is theirs.
func (s *Store) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load(), nil
		},
	}
}

// loadPair reads and checks a certificate and key.
func loadPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: load %s and %s: %w", certFile, keyFile, err)
	}
	if len(cert.Certificate) == 0 {
		return nil, fmt.Errorf("tls: %s holds no certificate", certFile)
	}
	if cert.Leaf == nil {
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, fmt.Errorf("tls: parse %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	return &cert, nil
}

// Describe renders a connection for logs and Received lines:
// "TLS1.3 TLS_AES_128_GCM_SHA256". It returns "" for a connection whose
// handshake has not completed.
func Describe(cs tls.ConnectionState) string {
	if !cs.HandshakeComplete {
		return ""
	}
	version := strings.ReplaceAll(tls.VersionName(cs.Version), " ", "")
	return version + " " + tls.CipherSuiteName(cs.CipherSuite)
}
