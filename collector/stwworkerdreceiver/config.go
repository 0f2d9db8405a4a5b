package stwworkerdreceiver

import (
	"errors"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
)

// DefaultEndpoint is where the receiver listens by default (4318 is the otlp
// receiver's HTTP port in most Collectors).
const DefaultEndpoint = "localhost:4319"

// DefaultPath is the path tail workers POST their events to, as on the forwarder.
const DefaultPath = "/v1/stw"

// Config is the stwworkerd receiver's configuration: an HTTP server (endpoint, tls,
// auth, cors, max_request_body_size, ... from confighttp) and the path.
type Config struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// Path is the path of the endpoint; default DefaultPath.
	Path string `mapstructure:"path"`
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	s := confighttp.NewDefaultServerConfig()
	s.NetAddr.Endpoint = DefaultEndpoint
	return &Config{ServerConfig: s, Path: DefaultPath}
}

// Validate checks the path; confighttp checks the server settings.
func (c *Config) Validate() error {
	if !strings.HasPrefix(c.Path, "/") {
		return errors.New(`path: must start with "/", such as /v1/stw`)
	}
	return nil
}
