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
	isJSON, ok := r.readRequest(w, req, msg, "traces")
	if !ok {
		return
	}
	resp, err := r.exportTraces(req.Context(), msg)
	r.writeResponse(w, isJSON, resp, err)
}

func (r *Receiver) serveLogs(w http.ResponseWriter, req *http.Request) {
	msg := &collogspb.ExportLogsServiceRequest{}
	isJSON, ok := r.readRequest(w, req, msg, "logs")
	if !ok {
		return
	}
	resp, err := r.exportLogs(req.Context(), msg)
	r.writeResponse(w, isJSON, resp, err)
}

// readRequest reads and decodes the body into msg, or answers the request with an error.
func (r *Receiver) readRequest(w http.ResponseWriter, req *http.Request, msg proto.Message, what string) (isJSON, ok bool) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeStatus(w, false, http.StatusMethodNotAllowed, 0, "OTLP/HTTP export takes POST")
		return false, false
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
		return false, false
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
		return false, false
	}
	if isJSON {
		err = unmarshalJSON(body, msg)
	} else {
		err = proto.Unmarshal(body, msg)
	}
	if err != nil {
		r.requests.Inc()
		r.malformed.Inc()
		writeStatus(w, isJSON, http.StatusBadRequest, 0, fmt.Sprintf("malformed OTLP %s request: %v", what, err))
		return false, false
	}
	return isJSON, true
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
// protojson expects base64.
func unmarshalJSON(data []byte, msg proto.Message) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep 64-bit timestamps exact
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON: more than one value in the body")
	}
	if err := hexIDsToBase64(doc, ""); err != nil {
		return err
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(fixed, msg)
}

// idFields are the OTLP/JSON fields holding ids, with their length in bytes.
var idFields = map[string]int{
	"traceId": 16, "trace_id": 16,
	"spanId": 8, "span_id": 8,
	"parentSpanId": 8, "parent_span_id": 8,
}

func hexIDsToBase64(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			p := path + "." + k
			if size, ok := idFields[k]; ok {
				if s, ok := child.(string); ok {
					if s == "" {
						continue
					}
					b, err := hex.DecodeString(s)
					if err != nil || len(b) != size {
						return fmt.Errorf("%s: %q is not %d hex digits", strings.TrimPrefix(p, "."), s, 2*size)
					}
					v[k] = base64.StdEncoding.EncodeToString(b)
					continue
				}
			}
			if err := hexIDsToBase64(child, p); err != nil {
				return err
			}
		}
	case []any:
		for i, child := range v {
			if err := hexIDsToBase64(child, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
