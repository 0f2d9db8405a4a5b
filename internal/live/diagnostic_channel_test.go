package live

import (
	"testing"

	"github.com/stwbridge/stwbridge/bridge"
)

// A workerd diagnostics channel message reaches watchers with its channel and
// message, and a search finds it by either.
func TestDiagnosticChannelEvent(t *testing.T) {
	e := bridge.Event{Body: &bridge.DiagnosticChannel{Channel: "undici:request:create", Message: `{"url":"https://x/"}`}}
	j := toJSON(&e, &spanInfo{})
	if j.Type != "diagnostic_channel" || j.Message != `undici:request:create: {"url":"https://x/"}` {
		t.Errorf("JSON %+v", j)
	}
	en := &entry{ev: e}
	for search, want := range map[string]bool{"UNDICI": true, "https://x": true, "nothing": false} {
		if got := (&Filter{Search: search}).matchSearch(en); got != want {
			t.Errorf("search %q: %v, want %v", search, got, want)
		}
	}
}
