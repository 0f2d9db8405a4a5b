package processor

import (
	"time"

	"github.com/stwbridge/stwbridge/bridge"
)

// dropLogEvery is the least time between two log lines about dropped events.
const dropLogEvery = 10 * time.Second

// run is the background loop: one goroutine, one ticker shared by the rename scan and
// the heartbeats, and one for announcing held-back spans. It also logs drops, so that
// the hot path never logs.
func (p *Processor) run() {
	defer close(p.done)
	var tick, announce <-chan time.Time
	if p.period > 0 {
		t := time.NewTicker(p.period)
		defer t.Stop()
		tick = t.C
	}
	if d := p.opts.AnnounceDelay; d > 0 {
		t := time.NewTicker(announceTick(d))
		defer t.Stop()
		announce = t.C
	}
	var buf []*spanState
	var due []pendingOpen
	var lastLog time.Time
	for {
		select {
		case <-p.stop:
			return
		case now := <-announce:
			var n int
			if due, n = p.announceDue(now, due); n > 0 {
				// Announcements are what the delay made late: deliver them now
				// rather than after the pipeline's flush interval.
				p.pipe.Nudge()
			}
		case now := <-tick:
			n := p.tick.Add(1)
			renames := p.scanEvery > 0 && n%p.scanEvery == 0
			buf = p.scan(n, now, renames, buf)
			if d := p.dropped.Load(); d > p.dropsLogged && now.Sub(lastLog) >= dropLogEvery {
				p.opts.Logger.Warn("stwbridge processor: queue full, events dropped; raise WithMaxQueueEvents (OTEL_BSP_MAX_QUEUE_SIZE) or WithMaxQueueBytes if this persists",
					"dropped", d-p.dropsLogged, "dropped_total", d)
				p.dropsLogged, lastLog = d, now
			}
		}
	}
}

// announceTick is the period of the announcement check for an announce delay d: a
// quarter of it, within [1 ms, 250 ms], so a span is announced at most that late.
func announceTick(d time.Duration) time.Duration {
	return min(max(d/4, time.Millisecond), 250*time.Millisecond)
}

// scan visits every open span: with renames set it publishes UpdateName for spans
// renamed since their last published name; with tick > 0 it sends a Heartbeat on each
// stream that has been silent for more than hbTicks ticks. It returns buf for reuse.
func (p *Processor) scan(tick uint64, now time.Time, renames bool, buf []*spanState) []*spanState {
	buf = p.reg.appendAll(buf[:0])
	heartbeats := tick > 0 && p.hbTicks > 0
	for _, st := range buf {
		str := st.str
		str.mu.Lock()
		if renames && !st.ended && !st.suppressed {
			// Name takes the span's own lock: always after the stream's, as SetName
			// of a wrapped span does, so the two never deadlock.
			p.renameLocked(st, st.rw.Name(), now)
		}
		if heartbeats && str.seenTick != tick {
			str.seenTick = tick
			if !str.closed && str.shown > 0 && tick-str.lastTick > p.hbTicks {
				if p.publishLocked(str, bridge.Event{
					TraceID:  str.traceID,
					SpanID:   str.root.spanID,
					Time:     now,
					Resource: str.root.res,
					Scope:    str.root.scope,
					Body:     heartbeat,
				}) {
					p.heartbeats.Add(1)
				}
			}
		}
		str.mu.Unlock()
	}
	clear(buf) // let ended spans be collected
	return buf
}
