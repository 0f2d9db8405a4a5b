// Package stwworkerdreceiver is the Collector receiver `stwworkerd`: workerd Streaming
// Tail Workers POST their events to it (a JSON array or NDJSON, as the forwarder's
// /v1/stw takes them), and it hands them on as STW lifecycle log records (stw.*,
// docs/PROTOCOL.md) to its logs pipeline, typically into the stw connector. The HTTP
// server is the Collector's confighttp: TLS, auth extensions, CORS, compression and
// max_request_body_size are configured as on any Collector receiver.
//
// Each event decodes on its own: a malformed one is rejected and counted without
// losing the good ones beside it; an event type this version does not know is skipped
// and counted (workerd adds types). The answer is the forwarder's JSON (accepted,
// rejected, unknown, errors), 503 with Retry-After when the pipeline refused the
// events retryably (memory_limiter), 400 when it refused them for good.
package stwworkerdreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// stwReceiver serves POST <path>.
type stwReceiver struct {
	cfg  *Config
	set  receiver.Settings
	next consumer.Logs
	obs  *receiverhelper.ObsReport

	server *http.Server
	lis    net.Listener
	wg     sync.WaitGroup
}

var _ receiver.Logs = (*stwReceiver)(nil)

func newReceiver(set receiver.Settings, cfg *Config, next consumer.Logs) (*stwReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	return &stwReceiver{cfg: cfg, set: set, next: next, obs: obs}, nil
}

// Start listens and serves.
func (r *stwReceiver) Start(ctx context.Context, host component.Host) error {
	mux := http.NewServeMux()
	mux.Handle(r.cfg.Path, &handler{next: r.next, obs: r.obs, log: r.set.Logger})
	srv, err := r.cfg.ServerConfig.ToServer(ctx, host.GetExtensions(), r.set.TelemetrySettings, mux)
	if err != nil {
		return fmt.Errorf("stwworkerd: %w", err)
	}
	lis, err := r.cfg.ServerConfig.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("stwworkerd: listening on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.server, r.lis = srv, lis
	r.set.Logger.Info("receiving workerd tail events", zap.String("endpoint", lis.Addr().String()), zap.String("path", r.cfg.Path))
	r.wg.Go(func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	})
	return nil
}

// Shutdown stops the server, letting requests in progress finish within ctx.
func (r *stwReceiver) Shutdown(ctx context.Context) error {
	if r.server == nil {
		return nil
	}
	err := r.server.Shutdown(ctx)
	r.wg.Wait()
	return err
}

// addr is the address the receiver listens on, once started.
func (r *stwReceiver) addr() string { return r.lis.Addr().String() }
