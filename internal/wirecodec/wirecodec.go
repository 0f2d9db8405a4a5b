// Package wirecodec is gRPC's proto codec with a pass-through for messages already in
// protobuf wire format: a load generator or a benchmark sends requests the encoder
// wrote, or reads them, without building a message tree.
package wirecodec

import (
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Bytes is a message in protobuf wire format.
type Bytes []byte

// Codec is gRPC's proto codec, except that Bytes go out as they are and a *Bytes
// receives a message as it came. It keeps the codec's name, so the content type stays
// application/grpc+proto.
type Codec struct{ encoding.CodecV2 }

// New returns a Codec over gRPC's registered proto codec; use it with
// grpc.ForceCodecV2 (client) or grpc.ForceServerCodecV2 (server).
func New() Codec { return Codec{encoding.GetCodecV2(grpcproto.Name)} }

// Marshal sends Bytes as they are, any other message as the proto codec does.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(Bytes); ok {
		return mem.BufferSlice{mem.SliceBuffer(w)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal copies the message into a *Bytes, or decodes it as the proto codec does.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if w, ok := v.(*Bytes); ok {
		*w = data.Materialize()
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}
