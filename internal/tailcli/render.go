package tailcli

import (
	"fmt"
	"strings"
	"time"

	"charm.land/lipgloss/v2"
	"charm.land/lipgloss/v2/tree"
	"github.com/charmbracelet/x/ansi"

	"github.com/stwbridge/stwbridge/internal/live"
)

// styles of the pretty view.
var (
	styleTrace   = lipgloss.NewStyle().Bold(true)
	styleDim     = lipgloss.NewStyle().Faint(true)
	styleOpen    = lipgloss.NewStyle().Foreground(lipgloss.Yellow)
	styleOK      = lipgloss.NewStyle().Foreground(lipgloss.Green)
	styleError   = lipgloss.NewStyle().Foreground(lipgloss.Red)
	styleOldName = lipgloss.NewStyle().Faint(true).Strikethrough(true)
	styleHeader  = lipgloss.NewStyle().Reverse(true)
	styleTree    = lipgloss.NewStyle().Faint(true).PaddingRight(1)
)

// renderTraces draws the traces that match filter as indented trees, oldest first,
// and returns their lines. With budget > 0 it draws only the newest traces that fill
// budget lines (the rest would not fit on the screen anyway).
func (s *state) renderTraces(now time.Time, filter string, budget int) []string {
	ordered := s.ordered()
	var blocks [][]string
	total := 0
	for i := len(ordered) - 1; i >= 0 && (budget <= 0 || total < budget); i-- {
		if !ordered[i].matches(filter) {
			continue
		}
		block := strings.Split(ordered[i].render(now), "\n")
		blocks = append(blocks, block)
		total += len(block)
	}
	lines := make([]string, 0, total)
	for i := len(blocks) - 1; i >= 0; i-- {
		lines = append(lines, blocks[i]...)
	}
	return lines
}

// render draws one trace: a header line, then its spans as a tree.
func (tr *traceView) render(now time.Time) string {
	head := styleTrace.Render("trace " + oneLine(shortID(tr.id, 16)))
	if tr.service != "" {
		head += styleDim.Render(" · " + oneLine(tr.service))
	}
	open := tr.openSpans()
	head += styleDim.Render(" · " + plural(len(tr.spans), "span"))
	if open > 0 {
		head += styleOpen.Render(fmt.Sprintf(", %d open", open))
	}
	if tr.hidden > 0 {
		head += styleDim.Render(fmt.Sprintf(" (+%d not shown)", tr.hidden))
	}
	roots, kids := tr.children()
	t := tree.Root(head).EnumeratorStyle(styleTree).IndenterStyle(styleTree)
	seen := make(map[string]bool, len(tr.spans))
	for _, sp := range roots {
		t.Child(tr.node(sp, kids, now, seen))
	}
	return t.String()
}

// node builds the tree of sp: its label, its notes, then its children. seen guards
// against parent cycles in bad input.
func (tr *traceView) node(sp *span, kids map[string][]*span, now time.Time, seen map[string]bool) any {
	seen[sp.id] = true
	label := tr.label(sp, now)
	children := kids[sp.id]
	if len(sp.notes) == 0 && len(children) == 0 {
		return label
	}
	t := tree.Root(label)
	for _, n := range sp.notes {
		text := n.kind + " " + oneLine(n.text)
		if n.bad {
			t.Child(styleError.Render(text))
		} else {
			t.Child(styleDim.Render(text))
		}
	}
	for _, c := range children {
		if !seen[c.id] {
			t.Child(tr.node(c, kids, now, seen))
		}
	}
	return t
}

// label is one span's line: mark, name (with the name it had before a rename), time,
// status.
func (tr *traceView) label(sp *span, now time.Time) string {
	name := oneLine(sp.name)
	if name == "" {
		name = "span " + shortID(sp.id, 16)
	}
	if sp.oldName != "" {
		name += " ← " + styleOldName.Render(oneLine(sp.oldName))
	}
	if sp.service != "" && sp.service != tr.service {
		name += styleDim.Render(" [" + oneLine(sp.service) + "]")
	}
	switch {
	case sp.unfinished:
		return styleError.Render("✗ ") + name + "  " + styleError.Render("unfinished"+afterDuration(sp))
	case !sp.ended:
		elapsed := "…"
		if !sp.start.IsZero() {
			elapsed = formatElapsed(now.Sub(sp.start))
		}
		return styleOpen.Render("● ") + name + "  " + styleOpen.Render(elapsed)
	case sp.status == live.StatusError:
		return styleError.Render("✗ ") + name + "  " + spanDuration(sp) + "  " + styleError.Render(oneLine(joinNonEmpty(": ", "error", sp.statusDesc)))
	default:
		status := "ok"
		if sp.status == live.StatusUnset || sp.status == "" {
			status = "done"
		}
		return styleOK.Render("✓ ") + name + "  " + spanDuration(sp) + "  " + styleOK.Render(status)
	}
}

func spanDuration(sp *span) string {
	if sp.start.IsZero() || sp.end.IsZero() {
		return "?"
	}
	return formatDuration(sp.end.Sub(sp.start))
}

func afterDuration(sp *span) string {
	if sp.start.IsZero() || sp.end.IsZero() {
		return ""
	}
	return " after " + formatDuration(sp.end.Sub(sp.start))
}

// shortID returns the first n characters of a hex id.
func shortID(id string, n int) string {
	if len(id) > n {
		return id[:n]
	}
	return id
}

// fit keeps the last height lines of body (the newest traces), each cut to width.
func fit(lines []string, width, height int) []string {
	if height > 0 && len(lines) > height {
		lines = lines[len(lines)-height:]
	}
	if width > 0 {
		for i, l := range lines {
			if ansi.StringWidth(l) > width {
				lines[i] = ansi.Truncate(l, width, "…")
			}
		}
	}
	return lines
}
