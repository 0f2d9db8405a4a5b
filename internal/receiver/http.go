package receiver

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The OTLP/HTTP paths.
const (
	TracesPath = "/v1/traces"
	LogsPath   = "/v1/logs"
)

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// Mount registers the OTLP/HTTP handlers (POST /v1/traces, POST /v1/logs) on mux.
func (r *Receiver) Mount(mux *http.ServeMux) {
	mux.Handle(TracesPath, http.HandlerFunc(r.serveTraces))
	mux.Handle(LogsPath, http.HandlerFunc(r.serveLogs))
}

func (r *Receiver) serveTraces(w http.ResponseWriter, req *http.Request) {
	msg := &coltracepb.ExportTraceServiceRequest{}
	isJSON, idErrs, ok := r.readRequest(w, req, msg, "traces")
	if !ok {
		return
	}
	resp, err := r.exportTraces(req.Context(), msg)
	if ps := resp.GetPartialSuccess(); ps != nil && len(idErrs) > 0 {
		ps.ErrorMessage = summarize(idErrs) + "; " + ps.ErrorMessage
	}
	r.writeResponse(w, isJSON, resp, err)
}

func (r *Receiver) serveLogs(w http.ResponseWriter, req *http.Request) {
	msg := &collogspb.ExportLogsServiceRequest{}
	isJSON, idErrs, ok := r.readRequest(w, req, msg, "logs")
	if !ok {
		return
	}
	resp, err := r.exportLogs(req.Context(), msg)
	if ps := resp.GetPartialSuccess(); ps != nil && len(idErrs) > 0 {
		ps.ErrorMessage = summarize(idErrs) + "; " + ps.ErrorMessage
	}
	r.writeResponse(w, isJSON, resp, err)
}

// readRequest reads and decodes the body into msg, or answers the request with an error.
// For OTLP/JSON, idErrs describe the ids that were not hex of their length: their
// records are rejected by the checks that follow.
func (r *Receiver) readRequest(w http.ResponseWriter, req *http.Request, msg proto.Message, what string) (isJSON bool, idErrs []error, ok bool) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, false, http.StatusMethodNotAllowed, 0, "OTLP/HTTP export takes POST")
		return false, nil, false
	}
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	switch mediaType {
	case contentProtobuf, "application/protobuf":
	case contentJSON:
		isJSON = true
	default:
		r.requests.Inc()
		r.malformed.Inc()
		writeStatus(w, isJSON, http.StatusUnsupportedMediaType, 0,
			fmt.Sprintf("unsupported Content-Type %q: use %s or %s", req.Header.Get("Content-Type"), contentProtobuf, contentJSON))
		return false, nil, false
	}
	body, err := r.readBody(w, req)
	if err != nil {
		r.requests.Inc()
		var ref *refusal
		if errors.As(err, &ref) {
			r.oversize.Inc()
			writeStatus(w, isJSON, ref.status, 0, ref.msg)
		} else {
			r.malformed.Inc()
			writeStatus(w, isJSON, http.StatusBadRequest, 0, err.Error())
		}
		return false, nil, false
	}
	if isJSON {
		idErrs, err = unmarshalJSON(body, msg)
	} else {
		err = proto.Unmarshal(body, msg)
	}
	if err != nil {
		r.requests.Inc()
		r.malformed.Inc()
		writeStatus(w, isJSON, http.StatusBadRequest, 0, fmt.Sprintf("malformed OTLP %s request: %v", what, err))
		return false, nil, false
	}
	return isJSON, idErrs, true
}

// readBody reads the (possibly gzip-compressed) body, refusing more than the size
// limit before and after decompression.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request) ([]byte, error) {
	limit := r.opts.MaxRequestBodySize
	tooBig := &refusal{status: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("request body over the limit of %d bytes (receivers.otlp.http.max_request_body_size): split the batch", limit)}
	if req.ContentLength > limit {
		return nil, tooBig
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, limit)
	switch enc := strings.ToLower(req.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("body is not valid gzip: %v", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q: use gzip or none", enc)
	}
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) || int64(len(data)) > limit {
		return nil, tooBig
	}
	if err != nil {
		return nil, fmt.Errorf("reading the body: %v", err)
	}
	return data, nil
}

func (r *Receiver) writeResponse(w http.ResponseWriter, isJSON bool, resp proto.Message, err error) {
	if err == nil {
		writeMessage(w, isJSON, http.StatusOK, resp)
		return
	}
	ref, ok := err.(*refusal)
	if !ok {
		writeStatus(w, isJSON, http.StatusInternalServerError, 0, err.Error())
		return
	}
	if ref.retryAfter > 0 {
		secs := int((ref.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	writeStatus(w, isJSON, ref.status, int(ref.code), ref.msg)
}

// writeStatus answers with a google.rpc.Status body, as OTLP/HTTP asks.
func writeStatus(w http.ResponseWriter, isJSON bool, httpStatus, code int, msg string) {
	writeMessage(w, isJSON, httpStatus, &spb.Status{Code: int32(code), Message: msg})
}

func writeMessage(w http.ResponseWriter, isJSON bool, httpStatus int, m proto.Message) {
	var data []byte
	var err error
	if isJSON {
		w.Header().Set("Content-Type", contentJSON)
		data, err = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", contentProtobuf)
		data, err = proto.Marshal(m)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(httpStatus)
	_, _ = w.Write(data)
}

// unmarshalJSON decodes OTLP/JSON, whose trace and span ids are hex strings where
// protojson expects base64. An id that is not hex of the right length does not fail
// the request: it is made an id of the wrong length, which the checks of its record
// reject (partial success, as for protobuf), and described in the returned errors
// (the first maxIDErrors).
func unmarshalJSON(data []byte, msg proto.Message) ([]error, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep 64-bit timestamps exact
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: more than one value in the body")
	}
	bad := hexIDsToBase64(doc, nil)
	fixed, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(fixed, msg); err != nil {
		return nil, err
	}
	errs := make([]error, len(bad))
	for i, b := range bad {
		errs[i] = b
	}
	return errs, nil
}

// idFields are the OTLP/JSON fields holding ids, with their length in bytes.
var idFields = map[string]int{
	"traceId": 16, "trace_id": 16,
	"spanId": 8, "span_id": 8,
	"parentSpanId": 8, "parent_span_id": 8,
}

// maxIDErrors is how many bad ids of one request are described.
const maxIDErrors = 3

// badID stands for an id that is not hex of its length: one byte, which no id field
// accepts, so that its record is rejected.
var badID = base64.StdEncoding.EncodeToString([]byte{0})

// idError is an OTLP/JSON id that is not hex of its length. Its path is built only
// for the ids described, as the recursion unwinds: elements are appended leaf first.
type idError struct {
	rpath []string
	value string
	size  int
}

func (e *idError) Error() string {
	var b strings.Builder
	for i := len(e.rpath) - 1; i >= 0; i-- {
		b.WriteString(e.rpath[i])
	}
	v := e.value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	return fmt.Sprintf("%s: %q is not %d hex digits", strings.TrimPrefix(b.String(), "."), v, 2*e.size)
}

// hexIDsToBase64 rewrites the hex ids in v as base64, in place, and returns bad (with
// the first bad ids found in v appended). Its cost is linear in the size of v.
func hexIDsToBase64(v any, bad []*idError) []*idError {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if size, ok := idFields[k]; ok {
				if s, ok := child.(string); ok {
					if s == "" {
						continue
					}
					b, err := hex.DecodeString(s)
					if err != nil || len(b) != size {
						v[k] = badID
						if len(bad) < maxIDErrors {
							bad = append(bad, &idError{rpath: []string{"." + k}, value: s, size: size})
						}
						continue
					}
					v[k] = base64.StdEncoding.EncodeToString(b)
					continue
				}
			}
			n := len(bad)
			bad = hexIDsToBase64(child, bad)
			for _, e := range bad[n:] {
				e.rpath = append(e.rpath, "."+k)
			}
		}
	case []any:
		for i, child := range v {
			n := len(bad)
			bad = hexIDsToBase64(child, bad)
			for _, e := range bad[n:] {
				e.rpath = append(e.rpath, "["+strconv.Itoa(i)+"]")
			}
		}
	}
	return bad
}
