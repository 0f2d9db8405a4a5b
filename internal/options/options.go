// Package options resolves functional options in the OTel SDK style: apply the
// Option functions to a zero Options, then put each package's default in every field
// left unset.
package options

// Number is a type whose values can be compared with 0: integers, floats and types
// built on them, such as time.Duration.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~float32 | ~float64
}

// Apply returns the zero O with each option of opts applied in order; nil options
// are skipped.
func Apply[O any, F ~func(*O)](opts []F) O {
	var o O
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// Positive sets *v to def unless *v is above 0.
func Positive[T Number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// NonZero sets *v to def when *v is its type's zero value (0, "", nil).
func NonZero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
