package config

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger returns the process logger that c asks for, writing to w.
func NewLogger(c Log, w io.Writer) (*slog.Logger, error) {
	level, err := ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: level}
	switch c.Format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	case "text", "":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("log.format: %q is not allowed: use text or json", c.Format)
}
