package tailcli

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// tickEvery is how often the open spans' elapsed times move.
const tickEvery = 100 * time.Millisecond

// maxQueued bounds the events held while the view is paused; beyond it the oldest
// are dropped (counted).
const maxQueued = 50000

// Messages the program receives besides keys and ticks.
type (
	eventsMsg []item    // a batch from the stream
	connMsg   connState // the connection changed
	tickMsg   time.Time
	// streamEndMsg says the stream gave up for good (the server refused the request).
	streamEndMsg struct{ err error }
	// badLineMsg reports a line of the stream that did not decode.
	badLineMsg struct{ err error }
)

// model is the bubbletea model of the pretty view.
type model struct {
	st      *state
	from    string
	now     time.Time
	width   int
	height  int
	conn    connState
	paused  bool
	queued  []item
	dropped uint64 // events dropped while paused

	filter    string // applied filter
	typing    bool   // the / prompt is open
	filterBuf string

	err error // the stream's final error, shown and returned
}

func newModel(from string, now time.Time) *model {
	return &model{st: newState(), from: from, now: now}
}

func tick() tea.Cmd {
	return tea.Tick(tickEvery, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Init starts the clock.
func (m *model) Init() tea.Cmd { return tick() }

// Update applies one message.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		if !m.paused {
			m.now = time.Time(msg)
			m.st.prune(m.now)
		}
		return m, tick()
	case eventsMsg:
		m.receive(msg, time.Now())
	case connMsg:
		m.conn = connState(msg)
	case badLineMsg:
		m.st.notice("skipped a line of the stream: " + msg.err.Error())
	case streamEndMsg:
		m.err = msg.err
		return m, tea.Quit
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

// receive applies a batch of events, or queues it while paused.
func (m *model) receive(batch []item, now time.Time) {
	if m.paused {
		m.queued = append(m.queued, batch...)
		if over := len(m.queued) - maxQueued; over > 0 {
			m.dropped += uint64(over)
			m.queued = append(m.queued[:0], m.queued[over:]...)
		}
		return
	}
	for i := range batch {
		m.st.apply(&batch[i].ev, now)
	}
	m.now = now
}

// key handles a key press: p pauses and resumes, / opens the filter prompt, q quits.
func (m *model) key(k tea.KeyPressMsg) tea.Cmd {
	if m.typing {
		switch k.String() {
		case "enter":
			m.filter, m.typing = strings.TrimSpace(m.filterBuf), false
		case "esc":
			m.typing = false
		case "backspace":
			if r := []rune(m.filterBuf); len(r) > 0 {
				m.filterBuf = string(r[:len(r)-1])
			}
		case "ctrl+c":
			return tea.Quit
		default:
			m.filterBuf += k.Text
		}
		return nil
	}
	switch k.String() {
	case "q", "ctrl+c":
		return tea.Quit
	case "p", "space":
		m.setPaused(!m.paused)
	case "/":
		m.typing, m.filterBuf = true, m.filter
	case "esc":
		m.filter = ""
	}
	return nil
}

func (m *model) setPaused(p bool) {
	if p == m.paused {
		return
	}
	m.paused = p
	if !p {
		q := m.queued
		m.queued = nil
		m.receive(q, time.Now())
	}
}

// View draws the header, the traces that fit, and the prompt.
func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "stwbridge tail"
	return v
}

func (m *model) render() string {
	header := m.header()
	footer := m.footer()
	room := m.height - 1
	if footer != "" {
		room--
	}
	body := m.st.renderTraces(m.now, m.filter, max(room, 1))
	if len(body) == 0 {
		body = []string{styleDim.Render("waiting for spans…")}
	}
	lines := append([]string{header}, fit(body, m.width, max(room, 1))...)
	if footer != "" {
		lines = append(lines, fit([]string{footer}, m.width, 1)...)
	}
	return strings.Join(lines, "\n")
}

func (m *model) header() string {
	var conn string
	switch {
	case m.conn.connected:
		conn = "live"
	case m.conn.err != nil:
		conn = fmt.Sprintf("reconnecting in %s (%v)", m.conn.retryIn.Round(10*time.Millisecond), m.conn.err)
	default:
		conn = "connecting"
	}
	open := 0
	for _, tr := range m.st.traces {
		open += tr.openSpans()
	}
	parts := []string{"stwbridge tail", m.from, conn, plural(len(m.st.traces), "trace") + fmt.Sprintf(", %d open", open)}
	if m.st.skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", m.st.skipped))
	}
	if m.paused {
		parts = append(parts, fmt.Sprintf("PAUSED (%d waiting)", len(m.queued)+int(m.dropped)))
	}
	if m.filter != "" {
		parts = append(parts, "filter: "+m.filter)
	}
	parts = append(parts, "p pause  / filter  q quit")
	h := strings.Join(parts, " · ")
	if m.width > 0 {
		h = fit([]string{h}, m.width, 1)[0]
		h += strings.Repeat(" ", max(0, m.width-ansi.StringWidth(h)))
	}
	return styleHeader.Render(h)
}

// plural writes "1 trace", "2 traces".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (m *model) footer() string {
	switch {
	case m.typing:
		return "filter: " + m.filterBuf + "▏ (enter to apply, esc to cancel)"
	case len(m.st.notices) > 0:
		return styleError.Render(m.st.notices[len(m.st.notices)-1])
	}
	return ""
}
