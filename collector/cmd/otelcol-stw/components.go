package main

import (
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	_ "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	_ "go.opentelemetry.io/collector/confmap/provider/envprovider"
	_ "go.opentelemetry.io/collector/confmap/provider/fileprovider"
	_ "go.opentelemetry.io/collector/connector"
	_ "go.opentelemetry.io/collector/exporter/debugexporter"
	_ "go.opentelemetry.io/collector/exporter/otlpexporter"
	_ "go.opentelemetry.io/collector/otelcol"
	_ "go.opentelemetry.io/collector/processor/batchprocessor"
	_ "go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	_ "go.opentelemetry.io/collector/receiver/otlpreceiver"
	_ "go.opentelemetry.io/collector/extension/xextension/storage"
	_ "go.opentelemetry.io/collector/config/confighttp"
	_ "go.opentelemetry.io/collector/receiver/receiverhelper"
	_ "github.com/stwbridge/stwbridge/bridge"
	_ "github.com/stwbridge/stwbridge/otlpexport"
	_ "github.com/stwbridge/stwbridge/processor"
)

func main() {}
