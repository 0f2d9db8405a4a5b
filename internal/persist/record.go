package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// recordVersion is the first byte of every record; a reader refuses other versions.
const recordVersion = 1

// Record is one received request as kept in the log: enough to feed it through the
// receivers' HTTP handler again after a restart.
type Record struct {
	Path            string // /v1/logs, /v1/traces or /v1/stw
	ContentType     string
	ContentEncoding string
	Body            []byte
}

// errRecord is wrapped by every decoding error.
var errRecord = errors.New("persist: malformed record")

// encode appends r's encoding to b: version, then three u16-length-prefixed strings,
// then the body.
func (r Record) encode(b []byte) ([]byte, error) {
	b = append(b, recordVersion)
	for _, s := range []string{r.Path, r.ContentType, r.ContentEncoding} {
		if len(s) > 0xffff {
			return nil, fmt.Errorf("persist: header of %d bytes is too long to keep", len(s))
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return append(b, r.Body...), nil
}

// decodeRecord parses a record; the body aliases b.
func decodeRecord(b []byte) (Record, error) {
	if len(b) < 1 || b[0] != recordVersion {
		return Record{}, fmt.Errorf("%w: unknown version", errRecord)
	}
	b = b[1:]
	var fields [3]string
	for i := range fields {
		if len(b) < 2 {
			return Record{}, fmt.Errorf("%w: cut short", errRecord)
		}
		n := int(binary.LittleEndian.Uint16(b))
		b = b[2:]
		if len(b) < n {
			return Record{}, fmt.Errorf("%w: cut short", errRecord)
		}
		fields[i] = string(b[:n])
		b = b[n:]
	}
	return Record{Path: fields[0], ContentType: fields[1], ContentEncoding: fields[2], Body: b}, nil
}
