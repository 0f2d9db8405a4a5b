package demo

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
)

// ServiceName is the demo's service.name when OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES do not set one.
const ServiceName = "stwdemo"

// Resource describes the demo app: service.name ServiceName unless the standard
// variables say otherwise, their other attributes, and the SDK's.
func Resource(ctx context.Context) (*sdkresource.Resource, error) {
	// Later detectors win: the environment overrides the demo's name.
	return sdkresource.New(ctx,
		sdkresource.WithAttributes(attribute.String("service.name", ServiceName)),
		sdkresource.WithFromEnv(),
		sdkresource.WithTelemetrySDK())
}
