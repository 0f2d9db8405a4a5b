// Package tailcli is `stwbridge tail`: a live terminal view of the spans passing
// through a running stwbridge, open ones included.
package tailcli

// Pinned API (issue 9); the implementation replaces this file.

import (
	"context"
	"io"
)

// Run runs `stwbridge tail` with its arguments (those after "tail") and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	panic("not implemented yet")
}
