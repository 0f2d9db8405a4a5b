package demo

import (
	"context"
	"testing"
)

func TestResourceServiceName(t *testing.T) {
	for _, tc := range []struct {
		name, service, attrs, want string
	}{
		{"unset", "", "", ServiceName},
		{"OTEL_SERVICE_NAME", "shop", "", "shop"},
		{"OTEL_RESOURCE_ATTRIBUTES", "", "service.name=cart,team=web", "cart"},
		{"both: OTEL_SERVICE_NAME wins", "shop", "service.name=cart", "shop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tc.service)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tc.attrs)
			res, err := Resource(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			v, ok := res.Set().Value("service.name")
			if !ok || v.AsString() != tc.want {
				t.Errorf("service.name = %q, want %q", v.AsString(), tc.want)
			}
			if _, ok := res.Set().Value("telemetry.sdk.name"); !ok {
				t.Error("the SDK's attributes are missing")
			}
		})
	}
}
