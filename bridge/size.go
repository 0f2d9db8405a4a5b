package bridge

import (
	"reflect"
	"unsafe"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Fixed parts of the size estimate, in bytes.
const (
	sizeEvent     = int(unsafe.Sizeof(Event{}))
	sizeKeyValue  = int(unsafe.Sizeof(attribute.KeyValue{}))
	sizeValue     = int(unsafe.Sizeof(attribute.Value{}))
	sizeLink      = int(unsafe.Sizeof(Link{}))
	sizeSpanEvent = int(unsafe.Sizeof(SpanEvent{}))
	sizeString    = int(unsafe.Sizeof(""))
	// sizeTraceStateMember stands for one key=value member of a W3C trace state:
	// reading its exact length would allocate.
	sizeTraceStateMember = 48
	// sizeOpaqueValue stands for a composite attribute value whose layout this file
	// cannot read (see compositeValueSize).
	sizeOpaqueValue = 64
	// maxValueDepth bounds the recursion into nested slice and map values.
	maxValueDepth = 8
)

func spanOpenSize(b *SpanOpen) int {
	return int(unsafe.Sizeof(*b)) + len(b.Name) + traceStateSize(b.TraceState) +
		attributesSize(b.Attributes) + linksSize(b.Links)
}

func spanEndSize(b *SpanEndData) int {
	n := int(unsafe.Sizeof(*b)) + len(b.Status.Description) + len(b.Outcome) +
		attributesSize(b.Attributes) + linksSize(b.Links)
	for i := range b.Events {
		ev := &b.Events[i]
		n += sizeSpanEvent + len(ev.Name) + attributesSize(ev.Attributes)
	}
	return n
}

// Size returns a cheap estimate of the memory the event holds, in bytes: the envelope,
// its body, and the strings, attributes, span events and links the body refers to.
// The pipeline bounds its queues with it. Resource and Scope are not counted: producers
// share them between many events. Size never allocates, and for a given event it
// always returns the same value (events are immutable once published).
func (e *Event) Size() int {
	n := sizeEvent
	switch b := e.Body.(type) {
	case *SpanOpen:
		n += spanOpenSize(b)
	case *UpdateName:
		n += int(unsafe.Sizeof(*b)) + len(b.Name)
	case *Attributes:
		n += int(unsafe.Sizeof(*b)) + attributesSize(b.Attributes)
	case *StatusUpdate:
		n += int(unsafe.Sizeof(*b)) + len(b.Status.Description)
	case *SpanEndData:
		n += spanEndSize(b)
	case *CompleteSpan:
		n += int(unsafe.Sizeof(*b))
		if b.Open != nil {
			n += spanOpenSize(b.Open)
		}
		if b.End != nil {
			n += spanEndSize(b.End)
		}
	case *Heartbeat:
		n += int(unsafe.Sizeof(*b))
	case *Onset:
		n += int(unsafe.Sizeof(*b)) + len(b.ExecutionModel) + len(b.ScriptName) +
			len(b.ScriptVersion) + len(b.Entrypoint) + len(b.DispatchNamespace) +
			attributesSize(b.Attributes)
		for _, tag := range b.ScriptTags {
			n += sizeString + len(tag)
		}
		in := &b.Info
		n += len(in.Type) + len(in.Method) + len(in.URL) + len(in.CfJSON) +
			len(in.MethodName) + len(in.Cron) + len(in.QueueName) + len(in.MailFrom) +
			len(in.RcptTo) + len(in.Raw)
		for _, h := range in.Headers {
			n += 2*sizeString + len(h.Name) + len(h.Value)
		}
	case *Outcome:
		n += int(unsafe.Sizeof(*b)) + len(b.Outcome)
	case *Log:
		n += int(unsafe.Sizeof(*b)) + len(b.Level) + len(b.Message)
	case *Exception:
		n += int(unsafe.Sizeof(*b)) + len(b.Name) + len(b.Message) + len(b.Stack)
	case *Return:
		n += int(unsafe.Sizeof(*b))
	case *StreamDiagnostic:
		n += int(unsafe.Sizeof(*b))
	case *DiagnosticChannel:
		n += int(unsafe.Sizeof(*b)) + len(b.Channel) + len(b.Message)
	}
	return n
}

func traceStateSize(ts trace.TraceState) int {
	return ts.Len() * sizeTraceStateMember
}

func linksSize(links []Link) int {
	n := 0
	for i := range links {
		l := &links[i]
		n += sizeLink + traceStateSize(l.SpanContext.TraceState()) + attributesSize(l.Attributes)
	}
	return n
}

func attributesSize(kvs []attribute.KeyValue) int {
	n := len(kvs) * sizeKeyValue
	for i := range kvs {
		kv := &kvs[i]
		n += len(kv.Key)
		switch kv.Value.Type() {
		case attribute.EMPTY, attribute.BOOL, attribute.INT64, attribute.FLOAT64:
		case attribute.STRING:
			n += len(kv.Value.AsString())
		default:
			n += compositeValueSize(&kv.Value)
		}
	}
	return n
}

// The attribute package offers no allocation-free way to learn the length of a slice,
// byte-slice or map value (AsStringSlice and friends copy), and the byte bound must not
// ignore a large slice. So compositeValueSize reads the Value's fields through reflect,
// which allows reading unexported fields without copying them. The field names are
// looked up once; if a later version of the attribute package changes its layout, the
// estimate falls back to sizeOpaqueValue (and the tests of size.go fail, as a reminder).
var valueLayout = func() (l struct {
	ok               bool
	stringly, slice  int
	valueT, keyValue reflect.Type
}) {
	t := reflect.TypeFor[attribute.Value]()
	s, ok1 := t.FieldByName("stringly")
	a, ok2 := t.FieldByName("slice")
	if !ok1 || !ok2 || s.Type.Kind() != reflect.String || a.Type.Kind() != reflect.Interface {
		return l
	}
	l.ok, l.stringly, l.slice = true, s.Index[0], a.Index[0]
	l.valueT, l.keyValue = t, reflect.TypeFor[attribute.KeyValue]()
	return l
}()

// compositeValueSize estimates what a slice, byte-slice or map value refers to beyond
// its attribute.Value struct.
func compositeValueSize(v *attribute.Value) int {
	if !valueLayout.ok {
		return sizeOpaqueValue
	}
	return reflectValueSize(reflect.ValueOf(v).Elem(), 0)
}

// reflectValueSize estimates the out-of-line bytes of rv, an attribute.Value.
func reflectValueSize(rv reflect.Value, depth int) int {
	if depth > maxValueDepth {
		return sizeOpaqueValue
	}
	n := rv.Field(valueLayout.stringly).Len()
	inner := rv.Field(valueLayout.slice)
	if inner.IsNil() {
		return n
	}
	arr := inner.Elem()
	if arr.Kind() != reflect.Array {
		return n + sizeOpaqueValue
	}
	elem := arr.Type().Elem()
	switch {
	case elem.Kind() == reflect.String:
		for i := range arr.Len() {
			n += sizeString + arr.Index(i).Len()
		}
	case elem == valueLayout.valueT:
		for i := range arr.Len() {
			n += sizeValue + reflectValueSize(arr.Index(i), depth+1)
		}
	case elem == valueLayout.keyValue:
		for i := range arr.Len() {
			kv := arr.Index(i)
			n += sizeKeyValue + kv.Field(0).Len() + reflectValueSize(kv.Field(1), depth+1)
		}
	default: // bool, int64, float64
		n += arr.Len() * int(elem.Size())
	}
	return n
}
