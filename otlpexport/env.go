package otlpexport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Names of the OTLP exporter variables read by New, as "OTEL_EXPORTER_OTLP_" +
// optional signal ("LOGS_" or "TRACES_") + one of these.
const (
	envPrefix            = "OTEL_EXPORTER_OTLP_"
	envEndpoint          = "ENDPOINT"
	envHeaders           = "HEADERS"
	envInsecure          = "INSECURE"
	envCompression       = "COMPRESSION"
	envTimeout           = "TIMEOUT"
	envCertificate       = "CERTIFICATE"
	envClientKey         = "CLIENT_KEY"
	envClientCertificate = "CLIENT_CERTIFICATE"
)

// otlpGRPCPort is the port of an endpoint URL that names none.
const otlpGRPCPort = "4317"

// signalConfig is the resolved transport configuration of one signal: logs carry the
// lifecycle events (and pass-through logs), traces the spans.
type signalConfig struct {
	signal      string // "logs" or "traces"
	endpoint    string // host:port
	insecure    bool
	tls         *tls.Config // with !insecure; nil means the system roots
	headers     map[string]string
	compression string // "gzip" or "none"
	timeout     time.Duration
	// connKey is equal for two signals that can share one connection.
	connKey string
}

// envSource reads the variables of one signal: the signal's own variable first
// (OTEL_EXPORTER_OTLP_LOGS_X), then the generic one (OTEL_EXPORTER_OTLP_X).
type envSource struct {
	signal string // "LOGS" or "TRACES"
	getenv func(string) string
}

// lookup returns the value of the first of the signal's and the generic variable that
// is set and not empty, and that variable's name; ok is false when neither is.
func (s envSource) lookup(name string) (value, variable string, ok bool) {
	for _, v := range []string{envPrefix + s.signal + "_" + name, envPrefix + name} {
		if val := strings.TrimSpace(s.getenv(v)); val != "" {
			return val, v, true
		}
	}
	return "", "", false
}

// resolve applies the options over the environment (options win) for both signals.
func resolve(c *config, getenv func(string) string) (logs, traces signalConfig, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	logs, err = resolveSignal(c, envSource{"LOGS", getenv}, "logs")
	if err != nil {
		return logs, traces, err
	}
	traces, err = resolveSignal(c, envSource{"TRACES", getenv}, "traces")
	return logs, traces, err
}

func resolveSignal(c *config, env envSource, signal string) (signalConfig, error) {
	sc := signalConfig{signal: signal}

	rawEndpoint, endpointVar := DefaultEndpoint, ""
	if c.endpoint != nil {
		rawEndpoint, endpointVar = *c.endpoint, "WithEndpoint"
	} else if v, name, ok := env.lookup(envEndpoint); ok {
		rawEndpoint, endpointVar = v, name
	}
	hostport, scheme, err := parseEndpoint(rawEndpoint)
	if err != nil {
		if endpointVar == "" {
			endpointVar = "the default endpoint"
		}
		return sc, fmt.Errorf("otlpexport: %s=%q: %w", endpointVar, rawEndpoint, err)
	}
	sc.endpoint = hostport

	tlsKey := ""
	switch {
	case c.security != nil:
		sc.insecure = c.security.insecure
		sc.tls = c.security.tls
		tlsKey = fmt.Sprintf("option:%p", c.security)
	case scheme == "http":
		sc.insecure = true
	case scheme == "https":
		// TLS, configured below.
	default:
		if v, name, ok := env.lookup(envInsecure); ok {
			b, err := parseBool(v)
			if err != nil {
				return sc, fmt.Errorf("otlpexport: %s=%q: %w", name, v, err)
			}
			sc.insecure = b
		}
	}
	if c.security == nil && !sc.insecure {
		sc.tls, tlsKey, err = tlsFromEnv(env)
		if err != nil {
			return sc, err
		}
	}
	sc.connKey = fmt.Sprintf("%s|%v|%s", sc.endpoint, sc.insecure, tlsKey)

	switch {
	case c.headers != nil:
		sc.headers = maps.Clone(c.headers)
	default:
		if v, name, ok := env.lookup(envHeaders); ok {
			h, err := parseHeaders(v)
			if err != nil {
				return sc, fmt.Errorf("otlpexport: %s: %w", name, err)
			}
			sc.headers = h
		}
	}

	sc.compression = "none"
	if c.compression != nil {
		sc.compression = *c.compression
	} else if v, name, ok := env.lookup(envCompression); ok {
		v = strings.ToLower(v)
		if v != "gzip" && v != "none" {
			return sc, fmt.Errorf("otlpexport: %s=%q: unknown compression; use gzip or none", name, v)
		}
		sc.compression = v
	}

	sc.timeout = DefaultTimeout
	if c.timeout != nil {
		sc.timeout = *c.timeout
	} else if v, name, ok := env.lookup(envTimeout); ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return sc, fmt.Errorf("otlpexport: %s=%q: want a positive whole number of milliseconds", name, v)
		}
		sc.timeout = time.Duration(ms) * time.Millisecond
	}
	return sc, nil
}

// parseEndpoint accepts host:port, or a URL http://host[:port] or https://host[:port]
// (path ignored, as the OTel gRPC exporters do). scheme is "" for host:port.
func parseEndpoint(raw string) (hostport, scheme string, err error) {
	if raw == "" {
		return "", "", errors.New("empty endpoint; want host:port or http(s)://host:port")
	}
	if !strings.Contains(raw, "://") {
		host, port, err := net.SplitHostPort(raw)
		if err != nil || port == "" {
			return "", "", fmt.Errorf("want host:port or http(s)://host:port (%v)", err)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
		return joinHostPort(host, port, "")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("not a URL: %v", err)
	}
	scheme = strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", fmt.Errorf("scheme %q: use http:// (plaintext) or https:// (TLS)", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", "", errors.New("the URL names no host")
	}
	port := u.Port()
	if port == "" {
		port = otlpGRPCPort
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return joinHostPort(u.Hostname(), port, scheme)
}

// joinHostPort joins host and port, refusing hosts that would not read back as one
// (brackets or spaces in a name, such as "http://]").
func joinHostPort(host, port, scheme string) (string, string, error) {
	hp := net.JoinHostPort(host, port)
	if h, _, err := net.SplitHostPort(hp); err != nil || h != host || strings.ContainsAny(host, " []") && net.ParseIP(host) == nil {
		return "", "", fmt.Errorf("host %q is not a host name or IP address", host)
	}
	return hp, scheme, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errors.New("want true or false")
}

// parseHeaders parses the W3C-baggage-like list of the OTLP spec: key=value pairs
// separated by commas, values percent-encoded.
func parseHeaders(v string) (map[string]string, error) {
	h := map[string]string{}
	for i, pair := range strings.Split(v, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, val, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("entry %d (%q): want key=value", i+1, pair)
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("entry %d: key %q: %v", i+1, k, err)
		}
		value, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return nil, fmt.Errorf("entry %d: value of %q: %v", i+1, key, err)
		}
		h[strings.ToLower(key)] = value
	}
	return h, nil
}

// tlsFromEnv builds the TLS configuration of the certificate variables; nil (the
// system roots, no client certificate) when none is set. key identifies it.
func tlsFromEnv(env envSource) (cfg *tls.Config, key string, err error) {
	ca, caVar, hasCA := env.lookup(envCertificate)
	cert, certVar, hasCert := env.lookup(envClientCertificate)
	keyPath, keyVar, hasKey := env.lookup(envClientKey)
	if !hasCA && !hasCert && !hasKey {
		return nil, "system", nil
	}
	cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	if hasCA {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, "", fmt.Errorf("otlpexport: %s: %w", caVar, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("otlpexport: %s: %s holds no PEM certificate", caVar, ca)
		}
		cfg.RootCAs = pool
	}
	switch {
	case hasCert && hasKey:
		pair, err := tls.LoadX509KeyPair(cert, keyPath)
		if err != nil {
			return nil, "", fmt.Errorf("otlpexport: %s and %s: %w", certVar, keyVar, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case hasCert:
		return nil, "", fmt.Errorf("otlpexport: %s is set but no %s%s: mutual TLS needs both", certVar, envPrefix, envClientKey)
	case hasKey:
		return nil, "", fmt.Errorf("otlpexport: %s is set but no %s%s: mutual TLS needs both", keyVar, envPrefix, envClientCertificate)
	}
	return cfg, "env:" + ca + "|" + cert + "|" + keyPath, nil
}
