package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the files of a TLS listener. CertFile and KeyFile are PEM; when
// ClientCAFile is set, clients must present a certificate signed by one of its CAs (mTLS).
type TLSFiles struct {
	CertFile     string
	KeyFile      string
	ClientCAFile string
}

// Enabled reports whether any TLS file is set.
func (f TLSFiles) Enabled() bool {
	return f.CertFile != "" || f.KeyFile != "" || f.ClientCAFile != ""
}

// ServerConfig builds a server TLS configuration (TLS 1.2 or later) from the files. It
// returns nil and no error when no file is set (plaintext).
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	if !f.Enabled() {
		return nil, nil
	}
	if f.CertFile == "" || f.KeyFile == "" {
		return nil, errors.New("auth: TLS needs both a certificate file (cert) and a key file (key)")
	}
	cert, err := loadKeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if f.ClientCAFile != "" {
		if cfg.ClientCAs, err = loadPool("client CA", f.ClientCAFile); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLSFiles configures a TLS client: CAFile (PEM) replaces the system roots when
// set; CertFile and KeyFile (PEM, both or neither) are its certificate for mTLS.
type ClientTLSFiles struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string // overrides the name checked in the server's certificate
	InsecureSkipVerify bool   // skips the server's certificate check (tests only)
}

// ClientConfig builds a client TLS configuration (TLS 1.2 or later) from the files.
func (f ClientTLSFiles) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName, InsecureSkipVerify: f.InsecureSkipVerify} //nolint:gosec // opt-in by config
	var err error
	if f.CAFile != "" {
		if cfg.RootCAs, err = loadPool("CA", f.CAFile); err != nil {
			return nil, err
		}
	}
	if f.CertFile != "" || f.KeyFile != "" {
		if f.CertFile == "" || f.KeyFile == "" {
			return nil, errors.New("auth: a TLS client certificate needs both a certificate file (cert) and a key file (key)")
		}
		cert, err := loadKeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return cert, fmt.Errorf("auth: load TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// loadPool reads the PEM certificates of file; what names the file in errors.
func loadPool(what, file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth: read %s file: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("auth: %s file %s holds no PEM certificate", what, file)
	}
	return pool, nil
}
