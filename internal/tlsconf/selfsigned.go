package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"mailroom/internal/fsx"
)

// selfSignedLifetime is how long a self-signed certificate is valid.
const selfSignedLifetime = 10 * 365 * 24 * time.Hour

// WriteSelfSigned makes an ECDSA P-256 self-signed certificate and key for
// hosts (DNS names and IP addresses; the first is also the subject's common
// name), valid from an hour ago (to allow for clock skew) for ten years.
// The certificate is also a CA (basic constraints critical, keyCertSign), so
// clients that load the file as their trust anchor (swaks, Python's ssl,
// OpenSSL even in strict X.509 mode) accept it. Both files are PEM, written
// atomically: the key (PKCS #8) 0600 first, then the certificate 0644.
func WriteSelfSigned(certFile, keyFile string, hosts []string) error {
	if len(hosts) == 0 {
		return errors.New("self-signed certificate: no host names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("self-signed certificate: key: %w", err)
	}
	// RFC 5280 §4.1.2.2: a positive serial of at most 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("self-signed certificate: serial: %w", err)
	}
	notBefore := time.Now().Add(-time.Hour)
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: hosts[0], Organization: []string{"mailroom self-signed"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(selfSignedLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("self-signed certificate: key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// The key first: a reader that sees the new certificate finds its key.
	if err := fsx.WriteFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	if err := fsx.WriteFileAtomic(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	return nil
}
