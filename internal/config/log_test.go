package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	log, err := NewLogger(Log{Format: "json", Level: "warn"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if strings.Contains(b.String(), "hidden") || !strings.HasPrefix(b.String(), `{"time"`) {
		t.Errorf("json/warn logger wrote %q", b.String())
	}
	if _, err := NewLogger(Log{Format: "xml", Level: "info"}, &b); err == nil || !strings.Contains(err.Error(), "log.format") {
		t.Errorf("bad format: err %v, want a log.format error", err)
	}
	if _, err := NewLogger(Log{Level: "loud"}, &b); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Errorf("bad level: err %v, want a log.level error", err)
	}
}
