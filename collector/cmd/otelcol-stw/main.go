// Command otelcol-stw is an OpenTelemetry Collector distribution with stwbridge's
// components: the stw connector (lifecycle records → spans, unfinished spans of
// crashed producers) and the stwworkerd receiver (workerd tail workers), beside the
// otlp receiver, batch and memory_limiter processors, otlp and debug exporters, and the
// file_storage and health_check extensions. Laid out as ocb v0.165.0 generates a
// distribution from builder-config.yaml.
//
//	cd collector && go build ./cmd/otelcol-stw && ./otelcol-stw --config config.yaml
package main

import (
	"log"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/otelcol"
)

func main() {
	if err := run(settings()); err != nil {
		log.Fatal(err)
	}
}

// settings are the distribution's: its components, and configuration from files
// (--config file:PATH or a bare PATH) and environment variables (${env:NAME}).
func settings() otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-stw",
			Description: "OpenTelemetry Collector with stwbridge's stw connector and stwworkerd receiver",
			Version:     "0.165.0-stw",
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}
}

func runInteractive(params otelcol.CollectorSettings) error {
	cmd := otelcol.NewCommand(params)
	if err := cmd.Execute(); err != nil {
		log.Fatalf("collector server run finished with error: %v", err)
	}
	return nil
}
