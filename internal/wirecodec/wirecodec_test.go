package wirecodec

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Bytes pass through both ways unchanged; any other message goes through the proto
// codec, so the two forms interoperate.
func TestCodec(t *testing.T) {
	c := New()
	if c.Name() != "proto" {
		t.Fatalf("name %q, want proto (the content type must stay application/grpc+proto)", c.Name())
	}
	msg := wrapperspb.String("hello")
	wire, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal(Bytes(wire))
	if err != nil || !bytes.Equal(out.Materialize(), wire) {
		t.Fatalf("Marshal(Bytes) = %x, %v; want the bytes as they are", out.Materialize(), err)
	}
	var got Bytes
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, &got); err != nil || !bytes.Equal(got, wire) {
		t.Fatalf("Unmarshal into *Bytes = %x, %v", got, err)
	}
	var back wrapperspb.StringValue
	if err := c.Unmarshal(out, &back); err != nil || back.GetValue() != "hello" {
		t.Fatalf("Unmarshal into a message = %q, %v", back.GetValue(), err)
	}
	if enc, err := c.Marshal(msg); err != nil || !bytes.Equal(enc.Materialize(), wire) {
		t.Fatalf("Marshal(message) = %x, %v", enc.Materialize(), err)
	}
}
