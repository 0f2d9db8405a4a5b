package stwworkerdreceiver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/stwbridge/stwbridge/bridge/workerd"
	"github.com/stwbridge/stwbridge/collector/internal/stwcodec"
	"github.com/stwbridge/stwbridge/internal/stwingest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
)

// maxErrors is how many error messages an answer lists at most.
const maxErrors = 5

// dataFormat names what the receiver takes, in its obsreport metrics.
const dataFormat = "workerd_json"

// handler decodes one request of tail events and hands them to next.
type handler struct {
	next consumer.Logs
	obs  *receiverhelper.ObsReport
	log  *zap.Logger
}

// ServeHTTP answers as the forwarder's /v1/stw does (stwingest.Response).
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: POST tail events", r.Method))
		return
	}
	if msg := stwingest.CheckContentType(r.Header.Get("Content-Type")); msg != "" {
		fail(w, http.StatusUnsupportedMediaType, msg)
		return
	}
	// confighttp bounds the body (max_request_body_size) and decompresses it.
	data, err := io.ReadAll(r.Body)
	if err != nil {
		code := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			code = http.StatusRequestEntityTooLarge
		}
		fail(w, code, "reading the request body: "+err.Error()+": send smaller batches")
		return
	}

	events, errs := workerd.DecodeStream(data)
	resp := stwingest.Response{}
	for _, err := range errs {
		if errors.Is(err, workerd.ErrUnknownType) {
			resp.Unknown++
			continue
		}
		resp.Rejected++
		if len(resp.Errors) < maxErrors {
			resp.Errors = append(resp.Errors, err.Error())
		}
	}
	if resp.Rejected > 0 {
		h.log.Debug("tail events rejected", zap.Int("rejected", resp.Rejected), zap.String("first_error", resp.Errors[0]))
	}
	if len(events) == 0 {
		code := http.StatusOK
		if resp.Rejected > 0 {
			code = http.StatusBadRequest
			resp.Message = fmt.Sprintf("no valid tail event in the request (%d rejected): send a JSON array or NDJSON of workerd tail events, as a tailStream handler receives them", resp.Rejected)
		}
		writeJSON(w, code, resp)
		return
	}
	stwingest.OrderBySequence(events)

	ctx := h.obs.StartLogsOp(r.Context())
	ld, err := stwcodec.EventsToLogs(events)
	if err == nil {
		err = h.next.ConsumeLogs(ctx, ld)
	}
	h.obs.EndLogsOp(ctx, dataFormat, len(events), err)
	switch {
	case err == nil:
		resp.Accepted = len(events)
		writeJSON(w, http.StatusOK, resp)
	case consumererror.IsPermanent(err):
		resp.Dropped = len(events)
		resp.Message = "the pipeline refused the events: " + err.Error()
		writeJSON(w, http.StatusBadRequest, resp)
	default:
		// Nothing was taken, so a retry creates no duplicates.
		resp.Dropped = len(events)
		resp.Message = fmt.Sprintf("the pipeline refused all %d events (%v): retry later", len(events), err)
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, resp)
	}
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, stwingest.Response{Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, resp stwingest.Response) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(resp)
}
