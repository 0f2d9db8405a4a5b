package stwconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
)

// Type is the connector's type in the Collector's configuration.
var Type = component.MustNewType("stw")

// stability of both routes.
const stability = component.StabilityLevelAlpha

// NewFactory returns the factory of the stw connector: logs → traces (lifecycle
// records assembled into spans) and logs → logs (the other records).
func NewFactory() connector.Factory {
	return connector.NewFactory(Type, createDefaultConfig,
		connector.WithLogsToTraces(createLogsToTraces, stability),
		connector.WithLogsToLogs(createLogsToLogs, stability))
}

func createLogsToTraces(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Traces) (connector.Logs, error) {
	return newTracesConnector(set, cfg.(*Config), next)
}

func createLogsToLogs(_ context.Context, set connector.Settings, _ component.Config, next consumer.Logs) (connector.Logs, error) {
	return &passThrough{next: next, log: set.Logger}, nil
}
