package tailcli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stwbridge/stwbridge/internal/live"
)

// plainLine writes one event as one readable line with no escape codes:
//
//	15:04:05.000  checkout  4bf92f35 00f067aa  open        GET
//	15:04:05.120  checkout  4bf92f35 00f067aa  rename      GET /users/:id ← GET
//	15:04:06.400  checkout  4bf92f35 00f067aa  end         GET /users/:id  1.28s  ok
func plainLine(e *live.Event) string {
	if e.Type == live.TypeSkipped {
		return fmt.Sprintf("%s  -- this watcher fell behind: %d events skipped", clock(e.Time), e.Skipped)
	}
	var what, detail string
	name := e.Name
	switch e.Type {
	case "span_open":
		what = "open"
		if e.Replay {
			what = "open*" // opened before the tail connected
		}
		detail = name
	case "update_name":
		what, detail = "rename", name+" ← "+e.OldName
	case "span_end":
		what = "end"
		switch {
		case e.Unfinished:
			detail = name + "  UNFINISHED"
		case e.Status != nil && e.Status.Code == live.StatusError:
			detail = name + "  " + durationText(e) + "  " + joinNonEmpty(": ", "error", e.Status.Description)
		default:
			status := "ok"
			if e.Status == nil || e.Status.Code != live.StatusOK {
				status = "done"
			}
			detail = name + "  " + durationText(e) + "  " + status
		}
		if e.Outcome != "" {
			detail += "  (outcome " + e.Outcome + ")"
		}
	case "attributes":
		what, detail = "attributes", name+"  "+attrText(e.Attributes)
	case "status":
		what = "status"
		if e.Status != nil {
			detail = name + "  " + joinNonEmpty(": ", e.Status.Code, e.Status.Description)
		}
	case "log":
		what, detail = "log", logText(e.Level, e.Message)
	case "exception":
		what = "exception"
		if e.Exception != nil {
			detail = joinNonEmpty(": ", e.Exception.Name, e.Exception.Message)
		}
	case "onset":
		what, detail = "onset", name
	case "outcome":
		what = "outcome"
		detail = joinNonEmpty("  ", name, e.Outcome)
		if e.DurationNS > 0 {
			detail += "  " + durationText(e)
		}
	case "return":
		what, detail = "return", fmt.Sprintf("%s  status %d", name, e.StatusCode)
	case "diagnostic":
		what, detail = "diagnostic", fmt.Sprintf("producer dropped %d events", e.DroppedEvents)
	default:
		what, detail = e.Type, name
	}
	service := e.Service
	if service == "" {
		service = "-"
	}
	return strings.TrimRight(oneLine(fmt.Sprintf("%s  %-12s %s %s  %-10s  %s",
		clock(e.Time), service, shortID(orDash(e.TraceID), 8), shortID(orDash(e.SpanID), 8), what, detail)), " ")
}

func durationText(e *live.Event) string {
	if e.DurationNS <= 0 {
		return "?"
	}
	return formatDuration(time.Duration(e.DurationNS))
}

func attrText(attrs map[string]any) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%v", k, attrs[k])
	}
	return b.String()
}

// clock writes an RFC 3339 time as local wall-clock time to the millisecond.
func clock(s string) string {
	t := parseTime(s)
	if t.IsZero() {
		return "--:--:--.---"
	}
	return t.Local().Format("15:04:05.000")
}

func orDash(s string) string {
	if s == "" {
		return "--------"
	}
	return s
}

// oneLine keeps a text on one line and free of control characters, so that what a
// producer sends cannot move the cursor or change the terminal's colours.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}
